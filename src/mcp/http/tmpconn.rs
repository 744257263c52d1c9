//! TEMPORARY plain-TCP stand-in for `client::nonblocking` (being written beside this); same
//! interface. Removed before landing.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

pub(crate) struct Connection(TcpStream);

pub(crate) type RawSocket = std::os::fd::RawFd;

impl Connection {
    pub(crate) fn open(url: &str) -> io::Result<Connection> {
        let uri: ureq_proto::http::Uri = url.parse().map_err(io::Error::other)?;
        let host = uri.host().unwrap_or("");
        let port = uri.port_u16().unwrap_or(80);
        let s = TcpStream::connect((host, port))?;
        s.set_nonblocking(true)?;
        Ok(Connection(s))
    }
    pub(crate) fn interest(&self) -> Option<(RawSocket, Interest)> {
        Some((
            self.0.as_raw_fd(),
            Interest {
                read: true,
                write: false,
            },
        ))
    }
    pub(crate) fn progress(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.write(data)
    }
}

pub(crate) struct PollEntry {
    pub socket: RawSocket,
    pub read: bool,
    pub write: bool,
    pub readable: bool,
    pub writable: bool,
}

pub(crate) fn poll_sockets(
    entries: &mut [PollEntry],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let mut fds: Vec<libc::pollfd> = entries
        .iter()
        .map(|e| libc::pollfd {
            fd: e.socket,
            events: (if e.read { libc::POLLIN } else { 0 })
                | (if e.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    for (e, f) in entries.iter_mut().zip(&fds) {
        let err = f.revents & (libc::POLLERR | libc::POLLHUP) != 0;
        e.readable = f.revents & libc::POLLIN != 0 || err;
        e.writable = f.revents & libc::POLLOUT != 0 || err;
    }
    Ok(rc as usize)
}
