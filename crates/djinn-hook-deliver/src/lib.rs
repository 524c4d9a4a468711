//! djinn-hook-deliver: placeholder until its issue lands.
