//! `cargo xtask bench` (filled in below).
#[derive(clap::Args, Debug)]
pub struct Args {}
pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
