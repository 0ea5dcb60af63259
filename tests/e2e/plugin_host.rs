//! The embedder's `PluginHost`: two gateways with hosts of different pool settings in one
//! process, and gateways with plugins built inside either kind of tokio runtime.

use std::time::{Duration, Instant};

use portico::{ApiDefinition, Format, Gateway, PluginHost};
use portico_tests::{get_status, plugins_dist};

/// An API over the echo plugin (a small Rust component), hostile_loop behind a 2 s integration
/// timeout and, when `python` is set, python_hello (a componentize-py component with large
/// tables).
fn definition(python: bool) -> ApiDefinition {
    let dist = plugins_dist(&["echo", "hostile_loop", "python_hello"]);
    let file = |name: &str| dist.join(format!("{name}.wasm")).display().to_string();
    let (python_plugin, python_route) = if python {
        (
            format!("  python: {{ path: '{}' }}\n", file("python_hello")),
            "  GET /python: { integration: { type: plugin, plugin: python } }\n",
        )
    } else {
        (String::new(), "")
    };
    let yaml = format!(
        "name: hosts\nplugins:\n  echo: {{ path: '{}' }}\n  loop: {{ path: '{}' }}\n{python_plugin}\
         routes:\n  GET /echo: {{ integration: {{ type: plugin, plugin: echo }} }}\n\
         \x20 GET /loop: {{ integration: {{ type: plugin, plugin: loop, timeoutMs: 2000 }} }}\n\
         {python_route}stages:\n  $default: {{}}\n",
        file("echo"),
        file("hostile_loop"),
    );
    ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("definition parses")
}

/// A host with room for one call at a time, whose tables are too small for python_hello.
fn small_host() -> PluginHost {
    PluginHost::builder()
        .max_instances(1)
        .max_table_elements(SMALL_TABLE)
        .build()
        .expect("small host")
}

/// Elements per table of the small host: enough for echo, too few for python_hello.
const SMALL_TABLE: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_with_different_plugin_hosts_live_in_one_process() {
    let big = Gateway::builder(definition(true))
        .plugin_host(PluginHost::builder().build().expect("default host"))
        .build()
        .expect("the default host runs every plugin");

    let Err(error) = Gateway::builder(definition(true))
        .plugin_host(small_host())
        .build()
    else {
        panic!("python_hello loaded on a host whose tables are too small for it")
    };
    let message = error.to_string();
    assert!(
        message.starts_with("plugins.python.path: ")
            && message.contains("python_hello.wasm")
            && message.contains("pooling allocator"),
        "{message}"
    );
    let small = Gateway::builder(definition(false))
        .plugin_host(small_host())
        .build()
        .expect("echo fits the small host");

    assert_eq!(get_status(&big, "/python").await, 200);
    assert_eq!(get_status(&big, "/echo").await, 200);
    assert_eq!(get_status(&small, "/echo").await, 200);

    // The small host's one instance is taken by the loop: its next call finds no room (502)
    // while the other host, with a pool of its own, goes on answering.
    // The loop and an echo call race for the one instance: when an echo call holds it at the
    // moment the loop asks, the loop is the one refused (502), and the scenario runs again.
    let mut refused = false;
    for _attempt in 0..5 {
        let looping = tokio::spawn({
            let small = small.clone();
            async move { get_status(&small, "/loop").await }
        });
        // Let the loop take the instance before the echo calls start asking.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        while !looping.is_finished() && started.elapsed() < Duration::from_secs(10) {
            match get_status(&small, "/echo").await {
                502 => {
                    refused = true;
                    assert_eq!(get_status(&big, "/echo").await, 200);
                    break;
                }
                200 => tokio::time::sleep(Duration::from_millis(10)).await,
                other => panic!("echo on the small host answered {other}"),
            }
        }
        let looped = looping.await.expect("loop task");
        if refused {
            assert_eq!(looped, 504);
            break;
        }
        assert_eq!(
            looped, 502,
            "the loop neither timed out nor lost the race for the instance"
        );
    }
    assert!(refused, "the small host never ran out of instances");
    // Its instance back, the small host answers again.
    assert_eq!(get_status(&small, "/echo").await, 200);
    assert_eq!(get_status(&big, "/python").await, 200);
}

#[tokio::test]
async fn gateways_sharing_a_host_each_serve_their_plugins() {
    let host = PluginHost::builder().build().expect("host");
    let first = Gateway::builder(definition(false))
        .plugin_host(host.clone())
        .build()
        .expect("first gateway");
    let second = Gateway::builder(definition(false))
        .plugin_host(host)
        .build()
        .expect("second gateway");
    assert_eq!(get_status(&first, "/echo").await, 200);
    assert_eq!(get_status(&second, "/echo").await, 200);
    second
        .reload(&definition(false))
        .expect("a reload on the shared host");
    assert_eq!(get_status(&second, "/echo").await, 200);
    drop(first);
    assert_eq!(get_status(&second, "/echo").await, 200);
}

/// Builds and reloads a gateway with plugins, then calls one.
async fn build_reload_and_call() {
    let gateway = Gateway::builder(definition(false)).build().expect("builds");
    gateway.reload(&definition(false)).expect("reloads");
    assert_eq!(get_status(&gateway, "/echo").await, 200);
}

#[test]
fn a_gateway_with_plugins_builds_inside_either_kind_of_runtime() {
    // A current-thread runtime has no other worker: the compilation runs in place.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    current.block_on(build_reload_and_call());

    // On a multi-thread runtime, in `block_on` and on a worker (in `block_in_place`).
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    multi.block_on(build_reload_and_call());
    multi
        .block_on(async { tokio::spawn(build_reload_and_call()).await })
        .expect("built on a worker");
}
