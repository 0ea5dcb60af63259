//! Instruction counts (gungraun, under valgrind) of routing.rs's `routing/portico` and
//! `routing/matchit`: the 130 GitHub API lookups through Portico's router and through a bare
//! `matchit::Router`. Only the lookups are counted: both routers are built and checked by the
//! set-up. Run with scripts/bench-ic, which prints the counts and their ratio (target: portico
//! <= 1.25x matchit).

use gungraun::{library_benchmark, library_benchmark_group, main};
use portico_benches::GithubRoutes;

/// Both routers, leaked so that dropping them is not counted.
fn routes() -> &'static GithubRoutes {
    Box::leak(Box::new(GithubRoutes::new()))
}

#[library_benchmark]
#[bench::github_api(setup = routes)]
fn portico_130_lookups(routes: &'static GithubRoutes) {
    routes.portico_lookups();
}

#[library_benchmark]
#[bench::github_api(setup = routes)]
fn matchit_130_lookups(routes: &'static GithubRoutes) {
    routes.matchit_lookups();
}

library_benchmark_group!(
    name = routing,
    benchmarks = [portico_130_lookups, matchit_130_lookups]
);

main!(library_benchmark_groups = routing);
