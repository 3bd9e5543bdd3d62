// Compiles src/ to dist/ (JavaScript and type declarations) and copies the demo's non-code files.
// Run by `npm run build` and by npm's `prepare` (so `npm ci` and an install from the repository build it).
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
for (const name of readdirSync('src/demo').filter((n) => !n.endsWith('.ts'))) cpSync(`src/demo/${name}`, `dist/demo/${name}`);
