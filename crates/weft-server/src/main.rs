//! The `weft` binary: `weft serve [ROOT] [options]`.

use std::io::Write;
use std::process::ExitCode;

use weft_server::cli::{self, Command, ServeConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match cli::parse(&args, cores) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("weft {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Serve(config)) if config.app.root.as_ref().is_some_and(|r| !r.is_dir()) => {
            let root = config
                .app
                .root
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            eprintln!("weft: ROOT {} is not a directory", root.display());
            ExitCode::from(2)
        }
        Ok(Command::Serve(config)) => match serve(*config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weft: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("weft: {e}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

fn announce(addr: std::net::SocketAddr) {
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "weft: listening on http://{addr}/");
    let _ = stdout.flush();
}

#[cfg(not(target_os = "wasi"))]
fn serve(config: ServeConfig) -> std::io::Result<()> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use weft_app::demo::DemoApp;
    use weft_server::event_loop::{EventLoop, LoopConfig};
    use weft_server::native::{bind_listener, NativeBackend};

    let shutdown = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&shutdown))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&shutdown))?;

    // The first listener fixes the port (when 0 was asked for); the others share it.
    let first = bind_listener(config.listen)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..config.workers {
        listeners.push(bind_listener(addr)?);
    }
    announce(addr);

    let loop_config = LoopConfig {
        limits: config.limits.clone(),
        max_connections: config.max_connections,
        budget: std::sync::Arc::new(weft_server::budget::MemoryBudget::new(config.memory_budget)),
    };
    let mut handles = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let backend = NativeBackend::new(listener)?;
        let app = DemoApp::new(config.demo()).map_err(std::io::Error::other)?;
        let loop_config = loop_config.clone();
        let shutdown = Arc::clone(&shutdown);
        let handle = std::thread::Builder::new()
            .name(format!("weft-worker-{i}"))
            .spawn(move || EventLoop::new(backend, app, loop_config).run(&shutdown))?;
        handles.push(handle);
    }
    let mut result = Ok(());
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(std::io::Error::other("a worker thread panicked")),
        }
    }
    result
}

/// WASI 0.2 has no threads: one event loop serves every connection.
#[cfg(target_os = "wasi")]
fn serve(config: ServeConfig) -> std::io::Result<()> {
    use std::sync::atomic::AtomicBool;
    use weft_app::demo::DemoApp;
    use weft_server::event_loop::{EventLoop, LoopConfig};
    use weft_server::wasi_backend::WasiBackend;

    if config.workers > 1 {
        eprintln!(
            "weft: WASI has no threads; --workers {} runs as one event loop",
            config.workers
        );
    }
    let app = DemoApp::new(config.demo()).map_err(std::io::Error::other)?;
    let backend = WasiBackend::bind(config.listen)?;
    announce(backend.local_addr());
    let loop_config = LoopConfig {
        limits: config.limits.clone(),
        max_connections: config.max_connections,
        budget: std::sync::Arc::new(weft_server::budget::MemoryBudget::new(config.memory_budget)),
    };
    // No signals reach a component: it runs until the host stops it.
    let shutdown = AtomicBool::new(false);
    EventLoop::new(backend, app, loop_config).run(&shutdown)
}
