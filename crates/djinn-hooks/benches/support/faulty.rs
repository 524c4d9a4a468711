//! Faulty receivers for the isolation benches, in the bench process for as long as it runs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The URL of faulty receiver `i`: never answering, trickling, refusing, or 3 s slow, in turn
/// (in this process, for as long as it runs).
pub(crate) fn receiver(i: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    match i % 4 {
        0 => {
            thread::spawn(move || {
                let held: Vec<_> = listener.incoming().collect();
                drop(held);
            });
        }
        2 => drop(listener),
        kind => {
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    thread::spawn(move || answer(stream, kind == 1));
                }
            });
        }
    }
    url
}

/// Answers each request of a connection with a 204, a byte a second (`trickle`) or after 3 s.
fn answer(mut stream: TcpStream, trickle: bool) {
    let mut buffer = [0; 64 * 1024];
    let response = b"HTTP/1.1 204 No Content\r\n\r\n";
    // One read per request is enough here: the worker sends head and body in one write.
    while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {
        if trickle {
            for byte in response {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_secs(1));
            }
        } else {
            thread::sleep(Duration::from_secs(3));
            if stream.write_all(response).is_err() {
                return;
            }
        }
    }
}
