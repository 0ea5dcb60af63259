// Builds app.js into a component of the `lazy-integration` world: node componentize.mjs OUT.wasm
//
// componentize-js's API, not `jco componentize` (whose CLI fails on this kind of machine).
// Every optional WASI feature is disabled, so the component imports only the world.
import { writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { componentize } from "@bytecodealliance/componentize-js";

const here = dirname(fileURLToPath(import.meta.url));
if (!process.argv[2]) {
  console.error("usage: node componentize.mjs OUT.wasm");
  process.exit(2);
}
const out = resolve(process.argv[2]);
// componentize-js maps the source into its engine relative to the working directory: from
// elsewhere (say /) it loses the path's first characters. So work from here, with a relative path.
process.chdir(here);

const { component } = await componentize({
  sourcePath: "app.js",
  witPath: resolve(here, "../../bindings/wit"),
  worldName: "lazy-integration",
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
