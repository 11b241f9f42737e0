//! The engine: one opened home with its layers wired together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logvault_core::{SharedClock, SystemClock};

use crate::{EngineError, Home};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The home directory.
    pub home: PathBuf,
    /// Run as if the clock read this time (the CLI's `--now`); `None` for the wall clock.
    pub now: Option<DateTime<Utc>>,
    /// A clock to use instead of the wall clock (tests pass a `TestClock`).
    pub clock: Option<SharedClock>,
}

impl EngineOptions {
    /// Options for the home at `home`, on the wall clock.
    pub fn new(home: impl AsRef<Path>) -> Self {
        Self {
            home: home.as_ref().to_owned(),
            now: None,
            clock: None,
        }
    }

    /// Runs the engine on `clock` (a `TestClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// An opened logvault home.
#[derive(Debug, Clone)]
pub struct Engine {
    home: Home,
    clock: SharedClock,
}

impl Engine {
    /// Opens (and on first use initializes) the home named in `options`.
    ///
    /// # Errors
    /// [`EngineError`] if the home cannot be created or its configuration is invalid.
    pub fn open(options: EngineOptions) -> Result<Self, EngineError> {
        let home = Home::open_or_init(&options.home)?;
        let base: SharedClock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let clock: SharedClock = match options.now {
            Some(now) => Arc::new(FixedClock(now)),
            None => base,
        };
        Ok(Self { home, clock })
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

/// A clock stopped at one instant (the CLI's `--now`).
#[derive(Debug)]
struct FixedClock(DateTime<Utc>);

impl logvault_core::Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
