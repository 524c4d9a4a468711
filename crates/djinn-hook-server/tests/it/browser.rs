//! Browser tests (headless Chromium through chromedriver): written next.
