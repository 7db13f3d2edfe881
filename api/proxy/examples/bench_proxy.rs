//! The proxy alone, for BENCHMARKS.md: `bench_proxy CATALOG_URL HTTP_LISTEN ADMIN_LISTEN`
//! follows a catalog (a master, or a static one) with `--group external`, service ports on
//! 127.0.0.1. `corral proxy` runs the same code; this only spares building every room.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, catalog, http_listen, admin_listen] = args.as_slice() else {
        anyhow::bail!("usage: bench_proxy CATALOG_URL HTTP_LISTEN ADMIN_LISTEN");
    };
    let config = corral_proxy::run::Config {
        masters: vec![catalog.clone()],
        groups: corral_proxy::table::Groups::parse("external").map_err(anyhow::Error::msg)?,
        http_listen: Some(http_listen.parse()?),
        bind_ip: "127.0.0.1".parse()?,
        admin_listen: Some(admin_listen.parse()?),
        drain_grace: std::time::Duration::from_secs(30),
        http_threads: match std::env::var("HTTP_THREADS") {
            Ok(threads) => threads.parse()?,
            Err(_) => std::thread::available_parallelism()?,
        },
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(corral_proxy::run::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}
