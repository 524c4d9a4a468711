//! One delivery in the evented engine: [`Exchange`], a non-blocking connection taken through
//! connect, TLS handshake, request and response by readiness events and deadlines, with
//! ureq's own HTTP/1.1 state machine (`ureq-proto`).
//!
//! Every failure is put as the `ureq` error the blocking agents meet for it (a refused
//! connect is `Error::Io` of the refusal, a peer gone before its answer is ureq's "Peer
//! disconnected", a deadline is `Error::Timeout` of its phase, a failed read of the body is
//! the `io::Error` ureq's body reader gives), then classified by
//! [`Deliverer::classify`](crate::Deliverer): an attempt records the same outcome and error
//! on either path.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Attempt, AttemptOutcome};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use ureq_proto::BodyMode;
use ureq_proto::client::state::{RecvBody, RecvResponse};
use ureq_proto::client::{Call, RecvResponseResult};

use crate::deliver::{Deliverer, record_body, record_head};
use crate::error::DeliverError;

/// The largest response head accepted, as ureq's default `max_response_header_size`.
const MAX_HEAD: usize = 64 * 1024;

/// How an attempt ended.
pub(crate) type Ending = Result<(), (AttemptOutcome, DeliverError)>;

/// A delivery ready to connect: everything decided on the calling thread (headers signed,
/// host resolved and allowed by the SSRF guard, request encoded).
pub(crate) struct Ready {
    pub(crate) attempt: Attempt,
    pub(crate) started: Instant,
    pub(crate) addrs: Vec<SocketAddr>,
    /// For `https`: the client settings (verified or not) and the name to verify.
    pub(crate) tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// The request's head and body, as ureq would send them.
    pub(crate) output: Vec<u8>,
    /// The call, waiting for the response once the request is out (taken when the exchange
    /// starts).
    pub(crate) call: Option<Call<RecvResponse>>,
    /// The overall budget, for the error's text.
    pub(crate) overall: Duration,
    pub(crate) overall_deadline: Instant,
    /// When connecting (TCP and TLS) must be done by: the connect timeout after resolution.
    pub(crate) connect_deadline: Instant,
    /// Response body bytes kept.
    pub(crate) cap: usize,
}

/// Where an exchange is.
enum Phase {
    Connecting,
    Handshaking,
    Head(Call<RecvResponse>),
    Body(Call<RecvBody>),
    /// Between phases (the call moved out).
    Moving,
}

/// What driving an exchange came to.
pub(crate) enum Step {
    /// Waiting on the socket or a deadline.
    Wait,
    /// The attempt ended.
    Done(Ending),
}

/// A delivery under way on a non-blocking socket.
pub(crate) struct Exchange {
    ready: Ready,
    stream: TcpStream,
    /// The address being tried.
    addr: usize,
    /// When to give up on it (and try the next one, if any).
    addr_deadline: Instant,
    tls: Option<ClientConnection>,
    phase: Phase,
    /// Bytes of `ready.output` sent (plain connections).
    written: usize,
    /// Received and not parsed yet.
    input: Vec<u8>,
    /// The response body kept (at most `cap + 1` bytes).
    body: Vec<u8>,
    /// The peer closed its side.
    eof: bool,
}

impl Exchange {
    /// Starts connecting to the first address that can be tried; the attempt back with its
    /// ending when none can.
    #[allow(
        clippy::result_large_err,
        reason = "once per delivery, moved straight into its record"
    )]
    pub(crate) fn connect(
        mut ready: Ready,
        registry: &Registry,
        token: Token,
        deliverer: &Deliverer,
    ) -> Result<Exchange, (Ready, Ending)> {
        let mut addr = 0;
        match open(&ready.addrs, &mut addr, registry, token) {
            Ok(stream) => {
                let addr_deadline = addr_deadline(&ready, addr, Instant::now());
                let output_capacity = ready.output.len();
                ready.output.shrink_to(output_capacity);
                Ok(Exchange {
                    ready,
                    stream,
                    addr,
                    addr_deadline,
                    tls: None,
                    phase: Phase::Connecting,
                    written: 0,
                    input: Vec::new(),
                    body: Vec::new(),
                    eof: false,
                })
            }
            Err(error) => {
                let ending = Err(deliverer.classify(error, ready.overall));
                Err((ready, ending))
            }
        }
    }

    /// When the exchange gives up waiting (or moves to the next address).
    pub(crate) fn deadline(&self) -> Instant {
        let phase = match self.phase {
            Phase::Connecting => self.addr_deadline,
            Phase::Handshaking => self.ready.connect_deadline,
            _ => self.ready.overall_deadline,
        };
        phase.min(self.ready.overall_deadline)
    }

    /// Drives the exchange after a readiness event.
    pub(crate) fn on_ready(
        &mut self,
        registry: &Registry,
        token: Token,
        deliverer: &Deliverer,
        scratch: &mut [u8],
    ) -> Step {
        match self.advance(registry, token, scratch) {
            Ok(false) => Step::Wait,
            Ok(true) => Step::Done(Ok(())),
            Err(Failure::Transport(error)) => {
                Step::Done(Err(deliverer.classify(error, self.ready.overall)))
            }
            Err(Failure::Ended(ending)) => Step::Done(ending),
        }
    }

    /// Acts on the deadline having passed: tries the next address, or ends the attempt as
    /// ureq ends it for the phase it is in.
    pub(crate) fn on_deadline(
        &mut self,
        registry: &Registry,
        token: Token,
        deliverer: &Deliverer,
    ) -> Step {
        let now = Instant::now();
        let overall_passed = now >= self.ready.overall_deadline;
        let connect_reason = if self.ready.connect_deadline <= self.ready.overall_deadline {
            ureq::Timeout::Connect
        } else {
            ureq::Timeout::Global
        };
        let error = match self.phase {
            Phase::Connecting
                if !overall_passed
                    && now < self.ready.connect_deadline
                    && self.addr + 1 < self.ready.addrs.len() =>
            {
                // This address's share of the budget is spent: the next one.
                let _ = registry.deregister(&mut self.stream);
                self.addr += 1;
                match open(&self.ready.addrs, &mut self.addr, registry, token) {
                    Ok(stream) => {
                        self.stream = stream;
                        self.addr_deadline = addr_deadline(&self.ready, self.addr, now);
                        return Step::Wait;
                    }
                    Err(error) => error,
                }
            }
            Phase::Connecting | Phase::Handshaking => ureq::Error::Timeout(connect_reason),
            Phase::Head(_) | Phase::Moving => ureq::Error::Timeout(ureq::Timeout::Global),
            Phase::Body(_) => {
                let error = ureq::Error::Timeout(ureq::Timeout::Global).into_io();
                return Step::Done(self.end_body(Err(error)));
            }
        };
        Step::Done(Err(deliverer.classify(error, self.ready.overall)))
    }

    /// The attempt, once ended.
    pub(crate) fn into_attempt(self) -> (Attempt, Instant) {
        (self.ready.attempt, self.ready.started)
    }

    /// Moves through as many phases as the socket allows; `true` once the attempt ended well
    /// (its record complete).
    fn advance(
        &mut self,
        registry: &Registry,
        token: Token,
        scratch: &mut [u8],
    ) -> Result<bool, Failure> {
        if let Phase::Connecting = self.phase {
            if !self.connected(registry, token)? {
                return Ok(false);
            }
            // ureq's default: requests go out at once.
            let _ = self.stream.set_nodelay(true);
            match self.ready.tls.take() {
                Some((config, name)) => {
                    let mut tls = ClientConnection::new(config, name)
                        .map_err(|error| Failure::Transport(ureq::Error::Rustls(error)))?;
                    // The whole request is queued at once; the socket takes it as it can.
                    tls.set_buffer_limit(None);
                    self.tls = Some(tls);
                    self.phase = Phase::Handshaking;
                }
                None => self.start_exchange(),
            }
        }
        if let Phase::Handshaking = self.phase {
            self.pump_tls()?;
            let tls = self
                .tls
                .as_mut()
                .expect("a TLS connection while handshaking");
            if tls.is_handshaking() {
                if self.eof {
                    return Err(Failure::Transport(ureq::Error::Io(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "tls handshake eof",
                    ))));
                }
                return Ok(false);
            }
            tls.writer()
                .write_all(&self.ready.output)
                .map_err(|error| Failure::Transport(ureq::Error::Io(error)))?;
            self.ready.output = Vec::new();
            self.start_exchange();
        }
        self.transfer(scratch)?;
        self.parse(scratch)
    }

    /// Whether the TCP connection is up; a failed address moves on to the next one.
    fn connected(&mut self, registry: &Registry, token: Token) -> Result<bool, Failure> {
        let error = match self.stream.take_error() {
            Ok(Some(error)) | Err(error) => error,
            Ok(None) => match self.stream.peer_addr() {
                Ok(_) => return Ok(true),
                Err(error) if error.kind() == ErrorKind::NotConnected => return Ok(false),
                Err(error) => error,
            },
        };
        if is_addr_specific(&error) && self.addr + 1 < self.ready.addrs.len() {
            let _ = registry.deregister(&mut self.stream);
            self.addr += 1;
            self.stream = open(&self.ready.addrs, &mut self.addr, registry, token)
                .map_err(Failure::Transport)?;
            self.addr_deadline = addr_deadline(&self.ready, self.addr, Instant::now());
            return Ok(false);
        }
        Err(Failure::Transport(ureq::Error::Io(error)))
    }

    fn start_exchange(&mut self) {
        let call = self.ready.call.take().expect("an exchange starts once");
        self.phase = Phase::Head(call);
    }

    /// Sends what is left of the request and reads what has arrived into `input`.
    fn transfer(&mut self, scratch: &mut [u8]) -> Result<(), Failure> {
        if self.tls.is_some() {
            // Until the socket has nothing more: rustls stops reading records while its
            // plaintext is not taken, and readiness is only signalled again for new bytes.
            loop {
                self.pump_tls()?;
                let tls = self.tls.as_mut().expect("checked above");
                let mut taken = 0;
                loop {
                    match tls.reader().read(scratch) {
                        Ok(0) => {
                            self.eof = true;
                            break;
                        }
                        Ok(n) => {
                            taken += n;
                            self.input.extend_from_slice(&scratch[..n]);
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                        Err(error) => return self.read_failed(error),
                    }
                }
                if taken == 0 || self.eof {
                    return Ok(());
                }
            }
        }
        while self.written < self.ready.output.len() {
            match self.stream.write(&self.ready.output[self.written..]) {
                Ok(n) => self.written += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return self.write_failed(error),
            }
        }
        if self.written == self.ready.output.len() && !self.ready.output.is_empty() {
            self.ready.output = Vec::new();
            self.written = 0;
        }
        while !self.eof {
            match self.stream.read(scratch) {
                Ok(0) => self.eof = true,
                Ok(n) => self.input.extend_from_slice(&scratch[..n]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return self.read_failed(error),
            }
        }
        Ok(())
    }

    /// Writes and reads TLS records as far as the socket allows, processing what arrived.
    fn pump_tls(&mut self) -> Result<(), Failure> {
        let tls = self.tls.as_mut().expect("a TLS connection");
        let io_error = |error| Failure::Transport(ureq::Error::Io(error));
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(_) => {}
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(error) if matches!(self.phase, Phase::Body(_)) => {
                        // The answer is there: a receiver closing early loses nothing.
                        let _ = error;
                        break;
                    }
                    Err(error) => return Err(io_error(error)),
                }
            }
            if self.eof || !tls.wants_read() {
                return Ok(());
            }
            match tls.read_tls(&mut self.stream) {
                Ok(0) => self.eof = true,
                Ok(_) => {
                    if let Err(error) = tls.process_new_packets() {
                        // The alert for the receiver, as rustls's own loop sends it.
                        let _ = tls.write_tls(&mut self.stream);
                        return Err(io_error(io::Error::new(ErrorKind::InvalidData, error)));
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    return match self.phase {
                        Phase::Body(_) if ends_body(&error) => {
                            self.eof = true;
                            Ok(())
                        }
                        _ => Err(io_error(error)),
                    };
                }
            }
        }
    }

    /// A failed read: the end of a body (as ureq takes a reset there), else the attempt's
    /// failure.
    fn read_failed(&mut self, error: io::Error) -> Result<(), Failure> {
        match self.phase {
            Phase::Body(_) if ends_body(&error) => {
                self.eof = true;
                Ok(())
            }
            Phase::Body(_) => Err(Failure::Ended(self.end_body(Err(error)))),
            _ => Err(Failure::Transport(ureq::Error::Io(error))),
        }
    }

    /// A failed write: the attempt's failure while the request is still going out.
    fn write_failed(&mut self, error: io::Error) -> Result<(), Failure> {
        match self.phase {
            Phase::Body(_) => Ok(()),
            _ => Err(Failure::Transport(ureq::Error::Io(error))),
        }
    }

    /// Parses what arrived: the response head, then the body; `true` once the attempt ended
    /// well.
    fn parse(&mut self, scratch: &mut [u8]) -> Result<bool, Failure> {
        if let Phase::Head(call) = &mut self.phase {
            let (used, response) = call
                .try_response(&self.input, false)
                .map_err(|error| Failure::Transport(ureq::Error::Protocol(error)))?;
            let size = if response.is_some() {
                used
            } else {
                self.input.len()
            };
            if size > MAX_HEAD {
                return Err(Failure::Transport(ureq::Error::LargeResponseHeader(
                    self.input.len(),
                    MAX_HEAD,
                )));
            }
            self.input.drain(..used);
            let Some(response) = response else {
                if self.eof {
                    return Err(Failure::Transport(ureq::Error::Io(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "Peer disconnected",
                    ))));
                }
                return Ok(false);
            };
            record_head(
                &mut self.ready.attempt,
                response.status().as_u16(),
                response.headers(),
            );
            let Phase::Head(call) = std::mem::replace(&mut self.phase, Phase::Moving) else {
                unreachable!("matched above");
            };
            match call.proceed().expect("a response was parsed") {
                RecvResponseResult::RecvBody(call) => self.phase = Phase::Body(call),
                RecvResponseResult::Redirect(_) | RecvResponseResult::Cleanup(_) => {
                    return Err(Failure::Ended(self.end_body(Ok(()))));
                }
            }
        }
        let Phase::Body(call) = &mut self.phase else {
            return Ok(false);
        };
        let cap = self.ready.cap;
        loop {
            let close_delimited = call.body_mode() == BodyMode::CloseDelimited;
            if (!close_delimited && call.can_proceed()) || self.body.len() > cap {
                return Err(Failure::Ended(self.end_body(Ok(()))));
            }
            if !self.input.is_empty() {
                let (used, produced) = match call.read(&self.input, scratch) {
                    Ok(read) => read,
                    Err(error) => {
                        let error = ureq::Error::Protocol(error).into_io();
                        return Err(Failure::Ended(self.end_body(Err(error))));
                    }
                };
                self.input.drain(..used);
                let keep = produced.min(cap + 1 - self.body.len());
                self.body.extend_from_slice(&scratch[..keep]);
                if used > 0 || produced > 0 {
                    continue;
                }
            }
            if self.eof {
                let ended = close_delimited || call.can_proceed() || call.is_ended_chunked();
                let read = if ended {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "Peer disconnected",
                    ))
                };
                return Err(Failure::Ended(self.end_body(read)));
            }
            return Ok(false);
        }
    }

    /// Records the body read so far and how reading it ended.
    fn end_body(&mut self, read: io::Result<()>) -> Ending {
        let body = std::mem::take(&mut self.body);
        record_body(&mut self.ready.attempt, body, self.ready.cap, read)
    }
}

/// Why driving stopped early.
enum Failure {
    /// A transport failure, to be classified.
    Transport(ureq::Error),
    /// The attempt ended (well or not) with its record complete.
    Ended(Ending),
}

/// Opens a non-blocking connection to the first address from `addrs[*addr]` on that can be
/// tried (one failing at once for its own reason, say an unreachable family, is skipped, as
/// ureq does), registered for reading and writing.
fn open(
    addrs: &[SocketAddr],
    addr: &mut usize,
    registry: &Registry,
    token: Token,
) -> Result<TcpStream, ureq::Error> {
    let mut last = None;
    while let Some(target) = addrs.get(*addr) {
        match TcpStream::connect(*target) {
            Ok(mut stream) => {
                registry
                    .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    .map_err(ureq::Error::Io)?;
                return Ok(stream);
            }
            Err(error) if is_addr_specific(&error) => last = Some(error),
            Err(error) => return Err(ureq::Error::Io(error)),
        }
        *addr += 1;
    }
    *addr = addrs.len().saturating_sub(1);
    Err(ureq::Error::Io(last.unwrap_or_else(|| {
        io::Error::new(ErrorKind::ConnectionRefused, "Connection refused")
    })))
}

/// The deadline of address `addr`, tried from `now`: as ureq shares the connect budget among
/// a host's addresses (halving from the first; the last one gets what is left).
fn addr_deadline(ready: &Ready, addr: usize, now: Instant) -> Instant {
    let left = ready.addrs.len() - addr;
    if left <= 1 {
        return ready.connect_deadline;
    }
    let budget = ready.connect_deadline.saturating_duration_since(now);
    let total_weight = 2.0 * (1.0 - 0.5_f64.powi(left as i32));
    let share = budget
        .mul_f64(1.0 / total_weight)
        .max(Duration::from_millis(10));
    (now + share).min(ready.connect_deadline)
}

/// A connect failure that concerns only the address tried (ureq's rule).
fn is_addr_specific(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::NetworkDown
            | ErrorKind::AddrNotAvailable
    )
}

/// Read errors that ureq takes as the end of a response body.
fn ends_body(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
