//! [`Coalescing`]: sends a request's head and body in one write instead of two.
//!
//! ureq writes the request head and then the body, each with its own `transmit_output`: two
//! `send` calls, two TCP segments on the wire, and a receiver that reads the head, finds the
//! body not there yet and waits again. This transport, last in the connector chain, keeps what
//! ureq transmits and sends it all when ureq first waits for the response (or when 64 KiB are
//! waiting): one `send` for a typical delivery. It changes nothing else: what is sent, its
//! order, the timeouts (the deferred write runs under the timeout of the wait that flushes it),
//! TLS (it wraps the TLS transport, so one TLS record goes out instead of two).

use std::fmt;

use ureq::Error;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

/// Waiting output sent at once when it reaches this size.
const FLUSH_AT: usize = 64 * 1024;

/// Wraps the transport of the previous connector in [`Coalescing`].
#[derive(Debug)]
pub(crate) struct CoalescingConnector;

impl<In: Transport> Connector<In> for CoalescingConnector {
    type Out = Coalescing<In>;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|inner| Coalescing {
            inner,
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            waiting: Vec::new(),
        }))
    }
}

/// A transport that holds back output until input is awaited (see the module docs).
///
/// ureq fills [`Buffers::output`] and transmits it, then reads from [`Buffers::input`]; the
/// wrapped transport has buffers of its own, so output is copied to `waiting` on transmit and
/// from there into the inner output buffer on flush, and input is copied from the inner input
/// buffer (a delivery's request is a few KiB, its response usually less: the copies cost far
/// less than the `send` they save).
pub(crate) struct Coalescing<T> {
    inner: T,
    buffers: LazyBuffers,
    waiting: Vec<u8>,
}

impl<T: Transport> fmt::Debug for Coalescing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescing")
            .field("inner", &self.inner)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl<T: Transport> Coalescing<T> {
    /// Sends all waiting output through the inner transport.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), Error> {
        let mut sent = 0;
        while sent < self.waiting.len() {
            let output = self.inner.buffers().output();
            let n = output.len().min(self.waiting.len() - sent);
            output[..n].copy_from_slice(&self.waiting[sent..sent + n]);
            self.inner.transmit_output(n, timeout)?;
            sent += n;
        }
        self.waiting.clear();
        Ok(())
    }

    /// Moves what the inner transport has read into this transport's input buffer; the bytes
    /// moved.
    fn take_input(&mut self) -> usize {
        let from = self.inner.buffers().input();
        let to = self.buffers.input_append_buf();
        let n = from.len().min(to.len());
        to[..n].copy_from_slice(&from[..n]);
        self.inner.buffers().input_consume(n);
        self.buffers.input_appended(n);
        n
    }
}

impl<T: Transport> Transport for Coalescing<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.waiting
            .extend_from_slice(&self.buffers.output()[..amount]);
        if self.waiting.len() >= FLUSH_AT {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        // The default, but with the request sent first even when input is already buffered.
        self.flush(timeout)?;
        if self.buffers.can_use_input() {
            return Ok(true);
        }
        self.await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush(timeout)?;
        if self.inner.buffers().input().is_empty() && !self.inner.await_input(timeout)? {
            return Ok(false);
        }
        Ok(self.take_input() > 0)
    }

    fn is_open(&mut self) -> bool {
        // Output still waiting means a request was cut short: not a connection to reuse.
        self.waiting.is_empty() && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
