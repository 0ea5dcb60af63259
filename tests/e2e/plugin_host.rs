//! The embedder's `PluginHost`: two gateways with hosts of different pool settings in one
//! process, and gateways with plugins built inside either kind of tokio runtime.

use portico::{ApiDefinition, Format, Gateway, PluginHost};
use portico_tests::{get_status, plugins_dist};

/// An API over the echo plugin (a small Rust component), hostile_loop behind a 2 s integration
/// timeout and, when `python` is set, python_hello (a componentize-py component with large
/// tables); one call at a time each, and the loop's calls never wait for a slot.
fn definition(python: bool) -> ApiDefinition {
    let dist = plugins_dist(&["echo", "hostile_loop", "python_hello"]);
    let file = |name: &str| dist.join(format!("{name}.wasm")).display().to_string();
    let (python_plugin, python_route) = if python {
        (
            format!(
                "  python: {{ path: '{}', maxConcurrency: 1 }}\n",
                file("python_hello")
            ),
            "  GET /python: { integration: { type: plugin, plugin: python } }\n",
        )
    } else {
        (String::new(), "")
    };
    let yaml = format!(
        "name: hosts\nplugins:\n  echo: {{ path: '{}', maxConcurrency: 1 }}\n\
         \x20 loop: {{ path: '{}', maxConcurrency: 1, maxQueued: 0 }}\n{python_plugin}\
         routes:\n  GET /echo: {{ integration: {{ type: plugin, plugin: echo }} }}\n\
         \x20 GET /loop: {{ integration: {{ type: plugin, plugin: loop, timeoutMs: 2000 }} }}\n\
         {python_route}stages:\n  $default: {{}}\n",
        file("echo"),
        file("hostile_loop"),
    );
    ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("definition parses")
}

/// A host with room for two instances, whose tables are too small for python_hello.
fn small_host() -> PluginHost {
    PluginHost::builder()
        .max_instances(2)
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

    // Each plugin has its share of the small pool: while the loop's one slot is taken, a
    // second call to it is refused at once as a throttled Lambda (500; its queue has no room),
    // echo goes on answering on its own slot, and so does the other host.
    let looping = |gateway: &Gateway| {
        let gateway = gateway.clone();
        tokio::spawn(async move { get_status(&gateway, "/loop").await })
    };
    let (first, second) = (looping(&small), looping(&small));
    assert_eq!(get_status(&small, "/echo").await, 200);
    assert_eq!(get_status(&big, "/echo").await, 200);
    let mut looped = [first.await.expect("loop"), second.await.expect("loop")];
    looped.sort_unstable();
    assert_eq!(
        looped,
        [500, 504],
        "one loop ran out of time, the other was throttled"
    );
    // Its instance back, the small host answers again.
    assert_eq!(get_status(&small, "/echo").await, 200);
    assert_eq!(get_status(&big, "/python").await, 200);
}

/// Every plugin reserves its `maxConcurrency` instances of the host's pool at load, so the
/// pool is never what a client meets: a plugin whose share does not fit is a load error that
/// names it (here the default 64 instances, on a host with room for 2).
#[test]
fn a_plugin_whose_share_of_the_pool_does_not_fit_is_a_load_error_naming_it() {
    let dist = plugins_dist(&["echo"]);
    let yaml = format!(
        "name: tight\nplugins:\n  one: {{ path: '{0}/echo.wasm', maxConcurrency: 2 }}\n\
         \x20 greedy: {{ path: '{0}/echo.wasm' }}\n\
         routes:\n  GET /e: {{ integration: {{ type: plugin, plugin: one }} }}\n\
         stages:\n  $default: {{}}\n",
        dist.display()
    );
    let definition = ApiDefinition::from_str_as(&yaml, Format::Yaml).expect("parses");
    let error = Gateway::builder(definition)
        .plugin_host(small_host())
        .build()
        .expect_err("64 instances do not fit in 2");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "plugins.greedy: needs room in the plugin host's pool for 64 instances (maxConcurrency)"
        ) && message.contains("the pool has 0 component instances"),
        "{message}"
    );
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
