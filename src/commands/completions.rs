//! `completions` and `man`: generated from the one clap definition ([`crate::cli::command`]).

use anyhow::Context as _;

use crate::cli::Shell;
use crate::commands::output::write_stdout;

pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(
        generator,
        &mut crate::cli::command(),
        "kvs-raft",
        &mut script,
    );
    write_stdout(&script);
    Ok(())
}

pub fn man() -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(crate::cli::command())
        .render(&mut page)
        .context("render the man page")?;
    write_stdout(&page);
    Ok(())
}
