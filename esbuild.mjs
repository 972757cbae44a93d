// One build script for every entry point: server CLI, agent host, extension and webview.
// Usage: node esbuild.mjs [--watch] [--production]
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const alias = { '@berth/protocol': './protocol/src/index.ts' };
const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  alias,
  legalComments: 'none',
};

// Node bundles are ESM; a banner restores require() for the CommonJS dependencies esbuild inlines.
const nodeEsmBanner = {
  js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);",
};

const targets = [
  {
    ...common,
    entryPoints: { cli: 'server/src/cli.ts' },
    outdir: 'dist/server',
    platform: 'node',
    target: 'node20',
    format: 'esm',
    banner: { js: '#!/usr/bin/env node\n' + nodeEsmBanner.js },
    // Native addons: loaded from node_modules at run time. pg-native is pg's optional binding, never installed.
    external: ['better-sqlite3', 'node-pty', 'pg-native'],
  },
  {
    // The agent host runs inside sandboxes (possibly a container with only a bind-mounted node):
    // it must be a single self-contained file with no node_modules.
    ...common,
    entryPoints: { 'agent-host': 'server/src/agent/main.ts' },
    outdir: 'dist/agent',
    outExtension: { '.js': '.mjs' },
    platform: 'node',
    target: 'node20',
    format: 'esm',
    banner: nodeEsmBanner,
  },
];

if (existsSync('extension/src/extension.ts')) {
  targets.push({
    ...common,
    entryPoints: { extension: 'extension/src/extension.ts' },
    outdir: 'dist/extension',
    outExtension: { '.js': '.cjs' },
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode'],
  });
}
if (existsSync('webview/src/main.ts')) {
  targets.push({
    ...common,
    entryPoints: { webview: 'webview/src/main.ts' },
    outdir: 'dist/webview',
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    loader: { '.css': 'css' },
  });
}

if (watch) {
  const contexts = await Promise.all(targets.map((t) => esbuild.context(t)));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log(`watching ${targets.length} bundles…`);
} else {
  const started = Date.now();
  await Promise.all(targets.map((t) => esbuild.build(t)));
  console.log(`built ${targets.length} bundles in ${Date.now() - started} ms${production ? ' (production)' : ''}`);
}
