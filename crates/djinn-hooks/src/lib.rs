//! The parts of the djinn-hooks binary that other code reuses: the adapter
//! between the store and the delivery worker, and (from `djinn-hook-server`)
//! a verifying receiver.
//!
//! [`StoreOutbox`] implements `djinn_hook_deliver::Outbox` for
//! `djinn_hook_store::Store`; it is the only code that knows both crates.
//! Its [`deliver_test`](StoreOutbox::deliver_test) sends one event to one
//! webhook now and records it ([`TestDelivery`]).
//! [`Receiver`] is a webhook receiver on a local address that checks every
//! delivery's signature with `djinn_hook_sign::verify`.
//!
//! ```no_run
//! use djinn_hook_sign::Secret;
//! use djinn_hooks::Receiver;
//!
//! let receiver = Receiver::start("127.0.0.1:0", Secret::from("s3cret")).unwrap();
//! println!("register {} as the payload URL", receiver.url());
//! if let Some(got) = receiver.next_timeout(std::time::Duration::from_secs(5)) {
//!     println!("{:?} signature ok: {}", got.event(), got.signature_valid);
//! }
//! ```
#![warn(missing_docs)]

mod outbox;
mod test_delivery;

pub use djinn_hook_server::{BindError, Received, Receiver};
pub use outbox::StoreOutbox;
pub use test_delivery::TestDelivery;
