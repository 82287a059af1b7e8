// Where a cold start spends its CPU: a `node --cpu-prof` profile of the bundled CLI, its samples attributed to the
// bundled package each falls in (esbuild marks every module of dist/eip-agent.js with a `// path` comment line).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const GROUPS: [RegExp, string][] = [
  [
    /^(handlebars|source-map|neo-async|wordwrap|minimist|uglify-js)$/,
    'handlebars (compiles the templates at run time)',
  ],
  [
    /^(execa|cross-spawn|get-stream|human-signals|signal-exit|npm-run-path|path-key|shebang-command|shebang-regex|which|isexe|strip-final-newline|is-stream|figures|unicorn-magic|parse-ms|pretty-ms|yoctocolors|is-plain-obj|is-unicode-supported|@sindresorhus\/merge-streams|@sec-ant\/readable-stream)$/,
    'execa',
  ],
  [/^diff$/, 'diff'],
  [/^(write-file-atomic|imurmurhash|signal-exit@3)$/, 'write-file-atomic'],
  [/^(p-limit|yocto-queue)$/, 'p-limit'],
  [/^src\//, 'src/ (the agent itself)'],
  [/^templates\//, 'templates'],
];

function group(module: string): string {
  return GROUPS.find(([re]) => re.test(module))?.[1] ?? module;
}

/** Self time (ms) per group of one profile written by `node --cpu-prof --cpu-prof-dir DIR` running `bundle`. */
export function profileByPackage(dir: string, bundle: string): Map<string, number> {
  const file = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const marks: { line: number; module: string }[] = [];
  readFileSync(bundle, 'utf8')
    .split('\n')
    .forEach((text, line) => {
      const m = /^\/\/ (\S+\.(?:js|mjs|cjs|ts|hbs|json))$/.exec(text.trim());
      if (m?.[1] === undefined) return;
      const path = m[1];
      const inModules = path.split('node_modules/').at(-1) as string;
      const parts = inModules.split('/');
      const module = path.includes('node_modules/')
        ? parts[0]?.startsWith('@')
          ? `${parts[0]}/${parts[1]}`
          : (parts[0] as string)
        : path;
      marks.push({ line, module });
    });
  const moduleAt = (line: number): string => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((marks[mid] as { line: number }).line <= line) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 'bundle top-level code' : (marks[found] as { module: string }).module;
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const groups = new Map<string, number>();
  const bundleName = bundle.split('/').at(-1) as string;
  for (const [id, us] of self) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    let name: string;
    if (frame.url.endsWith(bundleName))
      name = frame.lineNumber === 0 ? 'bundle top-level code' : group(moduleAt(frame.lineNumber));
    else if (frame.url === '')
      name =
        frame.functionName === '(garbage collector)'
          ? 'garbage collector'
          : frame.functionName === '(idle)'
            ? 'idle (waiting for `ip`)'
            : 'node/V8 (native)';
    else if (/child_process|net\.js|stream|pipe_wrap/.test(frame.url)) name = 'node: spawning processes';
    else name = 'node: startup, module loading and compiling';
    groups.set(name, (groups.get(name) ?? 0) + us / 1000);
  }
  return new Map([...groups].sort((a, b) => b[1] - a[1]));
}
