//! `completions` and `man`: generated from the one clap definition ([`crate::cli::command`]).

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::Shell;

pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = std::io::stdout().lock();
    clap_complete::generate(generator, &mut crate::cli::command(), "kvs-raft", &mut out);
    out.flush().context("write the completion script")
}

pub fn man() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(crate::cli::command())
        .render(&mut out)
        .and_then(|()| out.flush())
        .context("write the man page")
}
