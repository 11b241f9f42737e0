//! The signals that stop a server gracefully, for the binaries that run one (`logvault serve`,
//! `logvault-cluster`).

/// SIGTERM and SIGINT, listened for from before the server says it is up: a signal sent as
/// soon as the start line is read stops the server gracefully instead of killing it.
#[derive(Debug)]
pub struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Starts listening for both.
    ///
    /// # Errors
    /// The system refuses a signal handler.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the first of them.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
