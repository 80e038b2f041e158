//! The engine component under wasmtime: bindings generated from `wit/engine.wit`, and the
//! instances the host runs it in.
//!
//! Every connection's resources live in one instance; an instance holds at most
//! `conns_per_instance` connections, so a trap (a bug in the engine, or the watchdog
//! interrupting a call that runs too long) costs only those connections: the instance is
//! dropped with its store and the next connection gets a fresh one.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::error::Context;
use wasmtime::Result;
use wasmtime::{Config, Store};

wasmtime::component::bindgen!({
    path: "../../wit/engine.wit",
    world: "engine",
});

pub use exports::weft::engine::http;
pub use exports::weft::engine::types;
pub use exports::weft::engine::websocket;

/// How often the watchdog thread advances the engine's epoch.
pub const TICK: Duration = Duration::from_millis(10);

/// The compiled engine, ready to instantiate.
pub struct Runtime {
    pub wasmtime: wasmtime::Engine,
    pre: EnginePre<()>,
    /// Epoch ticks one turn of calls into an instance may take before it is interrupted.
    call_ticks: u64,
    stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Compiles the component at `path` and starts the watchdog, which interrupts (traps) a
    /// turn of engine calls that runs longer than `call_limit`.
    pub fn load(path: &Path, call_limit: Duration) -> Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let wasmtime = wasmtime::Engine::new(&config)?;
        let component = Component::from_file(&wasmtime, path)
            .with_context(|| format!("loading the engine component {}", path.display()))?;
        let linker = Linker::<()>::new(&wasmtime);
        let pre = EnginePre::new(linker.instantiate_pre(&component)?)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = wasmtime.clone();
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("weft-host-watchdog".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker.increment_epoch();
                }
            })?;
        let call_ticks = (call_limit.as_nanos() / TICK.as_nanos()).max(1);
        Ok(Runtime {
            wasmtime,
            pre,
            call_ticks: u64::try_from(call_ticks).unwrap_or(u64::MAX),
            stop,
        })
    }

    /// A fresh instance in a store of its own.
    pub fn instantiate(&self, id: u64) -> Result<Instance> {
        let mut store = Store::new(&self.wasmtime, ());
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.call_ticks);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Instance {
            id,
            store,
            bindings,
            conns: 0,
            call_ticks: self.call_ticks,
            interrupted: false,
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One instance of the engine and the store it lives in.
pub struct Instance {
    /// Counts instances over the host's life (for the log).
    pub id: u64,
    pub store: Store<()>,
    pub bindings: Engine,
    /// Connections with resources in this instance.
    pub conns: usize,
    call_ticks: u64,
    /// Set by [`Instance::interrupt`]: the next call traps.
    interrupted: bool,
}

impl Instance {
    /// Gives the next turn of calls its time budget (the watchdog's deadline).
    pub fn start_turn(&mut self) {
        if !self.interrupted {
            self.store.set_epoch_deadline(self.call_ticks);
        }
    }

    /// Makes the next call into this instance trap (wasmtime's epoch interruption: the
    /// engine's own code stops with a trap at its next check), as the watchdog does to a
    /// call that runs too long.
    pub fn interrupt(&mut self) {
        self.interrupted = true;
        self.store.set_epoch_deadline(0);
    }
}
