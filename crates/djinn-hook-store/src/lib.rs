//! djinn-hook-store: placeholder until its issue lands.
