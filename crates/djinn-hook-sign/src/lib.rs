//! djinn-hook-sign: placeholder until its issue lands.
