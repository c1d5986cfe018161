//! The `tafel` binary: parses the command line and calls the library. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use rand::distr::{Alphanumeric, SampleString};
use tafel_protocol::Role;
use tafel_server::auth::{now_secs, parse_ttl, Keys};
use tafel_server::config::{Cli, Command, Config, ServeArgs, TokenArgs};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|e| {
        eprintln!("bad --log filter {:?} ({e}); using info", args.log);
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::from(&args);
    let result = runtime.block_on(async move {
        let listener = tafel_server::bind(args.listen).map_err(|e| {
            tafel_server::ServerError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", args.listen),
            ))
        })?;
        tafel_server::run(listener, config, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tafel: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn token(args: TokenArgs) -> ExitCode {
    let Some(secret) = args.jwt_secret.filter(|s| !s.is_empty()) else {
        eprintln!("tafel token: no secret; pass --jwt-secret or set TAFEL_JWT_SECRET (the same one `tafel serve` uses)");
        return ExitCode::from(2);
    };
    let Some(role) = Role::parse(&args.role) else {
        eprintln!("tafel token: --role must be facilitator, employer, union, employee or observer");
        return ExitCode::from(2);
    };
    if args.board == "*" && role != Role::Facilitator {
        eprintln!("tafel token: --board '*' is allowed only for the facilitator role");
        return ExitCode::from(2);
    }
    if args.board != "*" && tafel_protocol::BoardId::parse(&args.board).is_err() {
        eprintln!("tafel token: --board must be a board id (a-z, A-Z, 0-9, '-', '_') or '*'");
        return ExitCode::from(2);
    }
    let ttl = match parse_ttl(&args.ttl) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tafel token: --ttl: {e}");
            return ExitCode::from(2);
        }
    };
    let sub = args
        .sub
        .unwrap_or_else(|| format!("p-{}", Alphanumeric.sample_string(&mut rand::rng(), 16)));
    println!(
        "{}",
        Keys::new(&secret).issue(&sub, &args.name, role, &args.board, ttl, now_secs())
    );
    ExitCode::SUCCESS
}
