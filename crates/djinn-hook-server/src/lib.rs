//! The HTTP front end of djinn-hooks. This branch holds only its web UI, [`ui`]:
//! the namespace's Webhooks tab, server-rendered, mounted under `/ui/`.
#![warn(missing_docs)]

pub mod ui;
