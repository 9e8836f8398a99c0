//! `kvs-raft bench`: the flags made into a validated [`Workload`] and [`RunConfig`] (a bad one exits 2
//! before anything is sent), the run on a multi-threaded runtime with a progress line on stderr every
//! second, and the report on stdout (a table, or `--json`).

use std::sync::Arc;

use super::output::outln;
use super::{client_error, client_options, UsageError};
use crate::bench::http::{HttpDriver, UpdateMode};
use crate::bench::{report, run as run_bench, Progress, RunConfig, RunError, Workload};
use crate::cli::{BenchArgs, UpdateArg, WorkloadArg};

/// The workload and the run the flags ask for, validated.
pub fn config(a: &BenchArgs) -> Result<(Workload, RunConfig), UsageError> {
    let usage = |message: String| UsageError::new("bench", message);
    let base = match a.workload {
        WorkloadArg::Game => Workload::game(a.players, a.rate),
        WorkloadArg::Put => Workload::put(a.players, a.rate),
    };
    let workload = Workload {
        checkpoint_fraction: a.checkpoints.unwrap_or(base.checkpoint_fraction),
        late_read_fraction: a.late_reads.unwrap_or(base.late_read_fraction),
        late_age: a.late_age.0,
        value_size: a.value_size,
        seed: a.seed,
        ..base
    };
    workload.validate().map_err(usage)?;
    let mut cfg = if a.closed_loop {
        RunConfig::closed(a.clients)
    } else {
        RunConfig::open(workload.offered_rate())
    };
    cfg.connections = a.connections;
    cfg.batch = a.batch;
    cfg.warmup = a.warmup.0;
    cfg.duration = a.duration.0;
    cfg.request_timeout = a.client.timeout;
    cfg.validate().map_err(usage)?;
    Ok((workload, cfg))
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let (workload, mut cfg) = config(&a)?;
    let update = match a.update {
        UpdateArg::Two => UpdateMode::Two,
        UpdateArg::Txn => UpdateMode::Txn,
    };
    let driver =
        HttpDriver::new(client_options(&a.client), update).map_err(|e| client_error(e, "bench"))?;
    cfg.progress = Some(Arc::new(|p: &Progress| {
        eprintln!("{}", report::progress_line(p))
    }));
    // The load generator needs more than one thread: request encoding and the client's TLS and HTTP
    // work would otherwise limit the rate it can offer.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(run_bench(Arc::new(driver), workload, cfg));
    let r = match result {
        Ok(r) => r,
        Err(RunError::Invalid(message)) => return Err(UsageError::new("bench", message).into()),
        Err(e) => return Err(e.into()),
    };
    if a.client.json {
        outln!("{}", report::json(&r));
    } else {
        outln!("{}", report::human(&r));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::bench::runner::Mode;
    use crate::bench::Shape;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let mut all = vec!["kvs-raft", "bench"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Bench(a) => Ok(a),
            other => panic!("not bench: {other:?}"),
        }
    }

    #[test]
    fn flags_become_a_workload_and_a_run() {
        let a = parse(&[]).expect("defaults");
        let (w, cfg) = config(&a).expect("valid");
        assert_eq!(w, Workload::game(1000, 1.0));
        assert_eq!(cfg.mode, Mode::Open { rate: 1000.0 });
        assert_eq!(
            (cfg.batch, cfg.warmup, cfg.duration),
            (
                1,
                RunConfig::open(1.0).warmup,
                RunConfig::open(1.0).duration
            )
        );

        let a = parse(&[
            "--workload",
            "put",
            "--players",
            "10",
            "--rate",
            "2.5",
            "--late-reads",
            "0.5",
            "--late-age",
            "250ms",
            "--value-size",
            "8",
            "--seed",
            "9",
            "--batch",
            "4",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--connections",
            "3",
            "--timeout",
            "3s",
        ])
        .expect("parses");
        let (w, cfg) = config(&a).expect("valid");
        assert_eq!(w.shape, Shape::Put);
        assert_eq!((w.checkpoint_fraction, w.late_read_fraction), (0.0, 0.5));
        assert_eq!(w.late_age, std::time::Duration::from_millis(250));
        assert_eq!((w.value_size, w.seed), (8, 9));
        assert_eq!(cfg.mode, Mode::Open { rate: 25.0 });
        assert_eq!((cfg.batch, cfg.connections), (4, 3));
        assert_eq!(cfg.warmup, std::time::Duration::ZERO);
        assert_eq!(cfg.request_timeout, std::time::Duration::from_secs(3));

        let a = parse(&["--closed-loop", "--clients", "5"]).expect("parses");
        assert_eq!(
            config(&a).expect("valid").1.mode,
            Mode::Closed { clients: 5 }
        );
    }

    #[test]
    fn bad_flags_are_usage_errors_naming_the_flag() {
        for (args, flag) in [
            (&["--checkpoints", "2"][..], "--checkpoints"),
            (&["--players", "0"], "--players"),
            (&["--rate", "0"], "--rate"),
            (&["--batch", "0"], "--batch"),
            (&["--duration", "0s"], "--duration"),
            (&["--closed-loop", "--clients", "0"], "--clients"),
        ] {
            let a = parse(args).expect("parses");
            let e = config(&a).expect_err("refused");
            assert!(e.message.contains(flag), "{args:?}: {e}");
        }
        // clap's own refusals.
        assert!(
            parse(&["--clients", "4"]).is_err(),
            "--clients needs --closed-loop"
        );
        assert!(parse(&["--open-loop", "--closed-loop"]).is_err());
        assert!(parse(&["--closed-loop", "--connections", "4"]).is_err());
        assert!(parse(&["--update", "three"]).is_err());
        assert!(parse(&["--late-age", "soon"]).is_err());
    }
}
