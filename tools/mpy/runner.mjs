// The MicroPython lane: run the core's checks on MicroPython 1.27 (WebAssembly port) under Node.
//
// Reads tests/mpy/lane.txt, copies the listed core modules, the check scripts and their
// data into the interpreter's in-memory filesystem under /repo (the same layout as the
// repository, so the checks find files exactly as they do on CPython), runs each check
// module through tests/mpy/harness.py, and prints `mpy: N passed, M failed` last.
// Exit status 1 when any check fails, 2 when the lane itself cannot run.
//
// Usage: node tools/mpy/runner.mjs [-v]      (-v or MPY_VERBOSE=1: one line per check)

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const PACKAGE = "@micropython/micropython-webassembly-pyscript";
const VFS_ROOT = "/repo";
const HEAP_BYTES = 64 * 1024 * 1024; // big ints, JSON vectors and SHA-512 state churn the GC heap
const PYSTACK_WORDS = 16 * 1024;
const VERBOSE = process.argv.includes("-v") || process.env.MPY_VERBOSE === "1";

// KNOWN_MPY_FAILURES: checks that fail on MicroPython because a core module uses something
// MicroPython lacks or does differently, reported to the lead and awaiting a fix in the core.
// An entry covers a failing check when `checks` matches "<check module>::<check name>"
// ("*" matches any run of characters) AND the failure text contains `signature`, so an
// unrelated new failure in the same checks still fails the lane. An entry that covers
// nothing in a run is stale and fails the lane, so the list cannot outlive the fix.
const KNOWN_MPY_FAILURES = [];

function globMatch(pattern, text) {
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === text;
  if (!text.startsWith(parts[0]) || !text.endsWith(parts[parts.length - 1])) return false;
  let pos = parts[0].length;
  const end = text.length - parts[parts.length - 1].length;
  if (pos > end) return false;
  for (const mid of parts.slice(1, -1)) {
    const i = text.indexOf(mid, pos);
    if (i < 0 || i + mid.length > end) return false;
    pos = i + mid.length;
  }
  return true;
}

function knownFailure(key, detail) {
  for (const entry of KNOWN_MPY_FAILURES) {
    if (globMatch(entry.checks, key) && String(detail).includes(entry.signature)) return entry;
  }
  return null;
}

function die(message) {
  console.error("mpy: " + message);
  console.log("mpy: 0 passed, 1 failed");
  process.exit(2);
}

function readManifest() {
  const text = fs.readFileSync(path.join(ROOT, "tests", "mpy", "lane.txt"), "utf8");
  const entries = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [kind, file, checks] = line.split(/\s+/);
    if (kind !== "core" && kind !== "data") die(`lane.txt: unknown kind '${kind}'`);
    entries.push({ kind, file, checks: checks || null });
  }
  return entries;
}

function copyIn(FS, rel) {
  const src = path.join(ROOT, rel);
  if (!fs.existsSync(src)) die(`missing file listed for the lane: ${rel}`);
  let dir = VFS_ROOT;
  for (const part of path.posix.dirname(rel).split("/")) {
    if (part === "." || part === "") continue;
    dir += "/" + part;
    try {
      FS.mkdir(dir);
    } catch (e) {
      // EEXIST: created by an earlier file
    }
  }
  FS.writeFile(VFS_ROOT + "/" + rel, fs.readFileSync(src));
}

function pyString(s) {
  return JSON.stringify(s); // a JSON string of plain ASCII is a valid Python literal
}

async function main() {
  const entry = path.join(HERE, "node_modules", PACKAGE, "micropython.mjs");
  if (!fs.existsSync(entry)) die(`${PACKAGE} is not installed; run tools/mpy/run.sh`);
  const { loadMicroPython } = await import(pathToFileURL(entry).href);

  const manifest = readManifest();
  const checkModules = [];
  for (const e of manifest) if (e.checks && !checkModules.includes(e.checks)) checkModules.push(e.checks);

  const pyOut = [];
  const mp = await loadMicroPython({
    heapsize: HEAP_BYTES,
    pystack: PYSTACK_WORDS,
    stdout: (line) => pyOut.push(line),
    stderr: (line) => pyOut.push(line),
  });
  // runPython executes statements; results come back through a __main__ global.
  const evalPy = (expr) => {
    mp.runPython(`_lane_value = ${expr}`);
    return mp.globals.get("_lane_value");
  };
  const version = evalPy("__import__('sys').implementation.name + ' ' + '.'.join([str(x) for x in __import__('sys').implementation.version[:3]])");

  mp.FS.mkdir(VFS_ROOT);
  const files = ["tests/mpy/lane.txt", "tests/mpy/harness.py"];
  for (const e of manifest) files.push(e.file);
  for (const m of checkModules) files.push(`tests/mpy/${m}.py`);
  for (const f of files) copyIn(mp.FS, f);

  mp.runPython(
    [
      "import sys",
      `sys.path.insert(0, ${pyString(VFS_ROOT + "/tests/mpy")})`,
      `sys.path.insert(0, ${pyString(VFS_ROOT)})`,
      "import harness",
      `harness.ROOT = ${pyString(VFS_ROOT)}`,
    ].join("\n"),
  );
  console.log(`mpy: ${version} (${PACKAGE}), ${checkModules.length} check modules, ${files.length} files`);

  let passed = 0;
  let failed = 0;
  const known = [];
  const covered = new Map(); // KNOWN_MPY_FAILURES entry -> failing checks it covered
  const started = Date.now();
  for (const mod of checkModules) {
    const t0 = Date.now();
    let report;
    try {
      report = JSON.parse(evalPy(`harness.run_json(${pyString(mod)})`));
    } catch (e) {
      // Only an error escaping the harness itself (e.g. MemoryError) lands here.
      report = { module: mod, results: [["<run>", false, `${e.type || e.name}: ${e.message}`, 0]], notes: [] };
    }
    for (const line of pyOut.splice(0)) console.log(`mpy: [${mod} output] ${line}`);
    for (const [name, ok, detail, ms] of report.results) {
      const key = `${mod}::${name}`;
      if (ok) {
        passed++;
        if (VERBOSE) console.log(`ok    ${key} (${Math.round(ms)} ms)`);
        continue;
      }
      const entry = knownFailure(key, detail);
      if (entry) {
        known.push(key);
        covered.set(entry, (covered.get(entry) || 0) + 1);
        if (VERBOSE) console.log(`xfail ${key}: ${entry.reason}`);
        continue;
      }
      failed++;
      console.log(`FAIL  ${key}\n      ${String(detail).split("\n").join("\n      ")}`);
    }
    for (const n of report.notes) console.log(`mpy: ${n}`);
    if (VERBOSE) console.log(`mpy: ${mod}: ${Date.now() - t0} ms`);
  }
  for (const entry of KNOWN_MPY_FAILURES) {
    const n = covered.get(entry) || 0;
    if (n === 0) {
      failed++;
      console.log(`FAIL  stale KNOWN_MPY_FAILURES entry (nothing fails that way now; remove it): ${entry.checks}: ${entry.reason}`);
    } else {
      console.log(`mpy: known failure x${n} [${entry.checks}]: ${entry.reason}`);
    }
  }
  if (known.length && !VERBOSE) console.log(`mpy: ${known.length} checks are known failures (KNOWN_MPY_FAILURES in tools/mpy/runner.mjs; -v lists them)`);
  console.log(`mpy: checks took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (passed + failed + known.length === 0) {
    failed = 1;
    console.log("FAIL  no checks ran");
  }
  console.log(`mpy: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => die(`runner crashed: ${e && e.stack ? e.stack : e}`));
