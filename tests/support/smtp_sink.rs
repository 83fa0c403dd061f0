//! A small SMTP server for tests and benchmarks: speaks enough ESMTP for lettre
//! (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every accepted message, and can be
//! told to reject the next messages (4xx) or to answer slowly.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    messages: Mutex<Vec<Received>>,
    reject_next: AtomicUsize,
    /// Recipients still to refuse with a permanent 550 that quotes the address.
    refuse_recipients: AtomicUsize,
    delay_millis: AtomicU64,
}

pub struct SmtpSink {
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// On a free port of 127.0.0.1.
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on(0).await.expect("SMTP sink binds")
    }

    pub async fn start_on(port: u16) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                connections.spawn(async move {
                    let _ = session(stream, state).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(SmtpSink { port, state, task })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.messages.lock().expect("sink lock").clone()
    }

    pub fn count(&self) -> usize {
        self.state.messages.lock().expect("sink lock").len()
    }

    /// Answer `451` to the next `n` messages instead of accepting them.
    pub fn reject_next(&self, n: usize) {
        self.state.reject_next.store(n, Ordering::SeqCst);
    }

    /// Answer `550 … <address>: Recipient address rejected` to the next `n` recipients,
    /// quoting the address as real servers do.
    pub fn refuse_recipients(&self, n: usize) {
        self.state.refuse_recipients.store(n, Ordering::SeqCst);
    }

    /// Wait this long before accepting each message.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_millis
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Waits until at least `n` messages arrived (or `timeout` passed) and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.count() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.messages()
    }

    /// Stops listening and drops every open connection.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 sink\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let recipient = address(&command[8..]);
            let refused = state
                .refuse_recipients
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refused {
                let reply = format!(
                    "550 5.1.1 <{recipient}>: Recipient address rejected: \
                     User unknown in virtual mailbox table ({recipient})\r\n"
                );
                write.write_all(reply.as_bytes()).await?;
            } else {
                to.push(recipient);
                write.write_all(b"250 OK\r\n").await?;
            }
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                if reader.read_until(b'\n', &mut raw).await? == 0 {
                    return Ok(());
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                if raw.starts_with(b"..") {
                    raw.remove(0);
                }
                data.extend_from_slice(&raw);
            }
            let delay = state.delay_millis.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let rejected = state
                .reject_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if rejected {
                write.write_all(b"451 try again later\r\n").await?;
            } else {
                state.messages.lock().expect("sink lock").push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                write.write_all(b"250 accepted\r\n").await?;
            }
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "NOOP" {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

fn address(text: &str) -> String {
    let text = text.trim();
    let inner = text
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address)
        .unwrap_or(text);
    inner.to_string()
}
