//! The web UI driven through its `Router` (no socket), and in headless Chromium (`browser`).

mod auth;
mod browser;
mod forms;
mod pages;
mod support;
