// A real PowerShell grammar (tree-sitter-powershell's .wasm in web-tree-sitter) and helpers that read its parse tree.
import { createRequire } from 'node:module';
import type { Node, Tree } from 'web-tree-sitter';
import { Language, Parser } from 'web-tree-sitter';

const require = createRequire(import.meta.url);
let parser: Parser | undefined;

/** Parses PowerShell source with the tree-sitter grammar (loaded once). */
export async function parsePowerShell(source: string): Promise<Tree> {
  if (parser === undefined) {
    await Parser.init();
    const language = await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'));
    parser = new Parser();
    parser.setLanguage(language);
  }
  const tree = parser.parse(source);
  if (tree === null) throw new Error('tree-sitter returned no tree');
  return tree;
}

/** Every node below `root` (depth first, document order). */
export function descendants(root: Node): Node[] {
  const out: Node[] = [];
  const walk = (node: Node): void => {
    out.push(node);
    for (const child of node.children) if (child !== null) walk(child);
  };
  walk(root);
  return out;
}

/** ERROR and MISSING nodes, as "line:column kind text" for a readable failure. */
export function syntaxProblems(tree: Tree): string[] {
  return descendants(tree.rootNode)
    .filter((n) => n.isError || n.isMissing)
    .map(
      (n) =>
        `${n.startPosition.row + 1}:${n.startPosition.column + 1} ${n.isMissing ? `MISSING ${n.type}` : 'ERROR'} ${JSON.stringify(n.text.slice(0, 80))}`,
    );
}

/** One command invocation: its name and its elements as parameter -> argument text (a switch maps to ''). */
export interface Invocation {
  name: string;
  node: Node;
  parameters: Map<string, string>;
}

/** Every command in the tree with its named parameters (`-Name value` and `-Name:value`). */
export function invocations(root: Node): Invocation[] {
  return descendants(root)
    .filter((n) => n.type === 'command')
    .map((node) => {
      const name = node.childForFieldName('command_name')?.text ?? '';
      const elements = (node.childForFieldName('command_elements')?.children ?? []).filter(
        (c): c is Node => c !== null && c.type !== 'command_argument_sep',
      );
      const parameters = new Map<string, string>();
      for (let i = 0; i < elements.length; i++) {
        const element = elements[i]!;
        if (element.type !== 'command_parameter') continue;
        const [flag, inline] = element.text.split(/:(.*)/s) as [string, string | undefined];
        const next = elements[i + 1];
        if (inline !== undefined && inline !== '') parameters.set(flag.toLowerCase(), inline);
        else if (next !== undefined && next.type !== 'command_parameter') {
          parameters.set(flag.toLowerCase(), next.text);
          i++;
        } else parameters.set(flag.toLowerCase(), '');
      }
      return { name, node, parameters };
    });
}

/** The nearest ancestor of `node` of a given type. */
export function ancestor(node: Node, type: string): Node | null {
  for (let p = node.parent; p !== null; p = p.parent) if (p.type === type) return p;
  return null;
}

/** A value of the data block: what a literal evaluates to. */
export type PsValue = string | number | boolean | PsValue[] | { [key: string]: PsValue };

/**
 * Evaluates a literal expression from the tree (hashtables, @() arrays, comma lists, single-quoted
 * strings, integers, $true/$false); throws on anything else, so data can only be literal data.
 */
export function evaluate(node: Node): PsValue {
  switch (node.type) {
    case 'hash_literal_expression': {
      const result: Record<string, PsValue> = {};
      for (const entry of descendants(node).filter(
        (n) => n.type === 'hash_entry' && ancestor(n, 'hash_literal_expression')?.id === node.id,
      )) {
        const key = entry.namedChildren.find((c) => c?.type === 'key_expression');
        const value = entry.namedChildren.find((c) => c?.type === 'pipeline');
        if (!key || !value) throw new Error(`unexpected hash entry ${entry.text}`);
        result[key.text] = evaluate(value);
      }
      return result;
    }
    case 'array_expression': {
      const list = node.childForFieldName('statements');
      const items = (list?.namedChildren ?? []).filter((c): c is Node => c !== null);
      return items.flatMap((item) => {
        const value = evaluate(item);
        return item.text.includes(',') && Array.isArray(value) ? value : [value];
      });
    }
    case 'string_literal':
      if (!/^'[^']*'$/.test(node.text)) throw new Error(`not a plain single-quoted string: ${node.text}`);
      return node.text.slice(1, -1);
    case 'integer_literal':
      return Number(node.text);
    case 'variable':
      if (node.text === '$true') return true;
      if (node.text === '$false') return false;
      throw new Error(`not a literal: ${node.text}`);
    default: {
      const named = node.namedChildren.filter((c): c is Node => c !== null);
      if (node.type === 'array_literal_expression' && named.length > 1) return named.map(evaluate);
      if (named.length === 1) return evaluate(named[0]!);
      throw new Error(`not a literal (${node.type}): ${node.text.slice(0, 60)}`);
    }
  }
}

/** The value assigned to `$name` at the top level of the script. */
export function assignedValue(root: Node, name: string): PsValue {
  const assignment = descendants(root).find(
    (n) => n.type === 'assignment_expression' && n.namedChildren[0]?.text === name,
  );
  const value = assignment?.childForFieldName('value');
  if (!value) throw new Error(`no assignment to ${name}`);
  return evaluate(value);
}

/** Parameters that only PowerShell 6 or later knows, for the cmdlets that have them. */
const PS7_PARAMETERS = [
  '-ashashtable',
  '-parallel',
  '-throttlelimit',
  '-additionalchildpath',
  '-asbytestream',
  '-escapehandling',
  '-skiphttperrorcheck',
  '-noproxy',
];

/**
 * What Windows PowerShell 5.1 cannot run, found on the parse tree: pipeline chains (&&, ||), the ternary, null-coalescing
 * and null-conditional operators (any `?` outside strings, comments and `$?`), and parameters added in PowerShell 6/7.
 * The tests' engine is PowerShell 7, so the scripts' compatibility with 5.1 is checked here.
 */
export function powershell7Only(tree: Tree): string[] {
  const at = (n: Node): string => `${n.startPosition.row + 1}:${n.startPosition.column + 1}`;
  const inert = (n: Node): boolean =>
    ['comment', 'string_literal', 'expandable_string_literal', 'verbatim_string_characters'].some(
      (t) => n.type === t || ancestor(n, t) !== null,
    );
  const problems: string[] = [];
  for (const node of descendants(tree.rootNode)) {
    if (node.type === 'pipeline_chain_tail') problems.push(`${at(node)} pipeline chain operator ${node.text}`);
    if (node.childCount === 0 && node.text.includes('?') && node.text !== '$?' && !inert(node))
      problems.push(`${at(node)} '?' operator: ${node.text}`);
  }
  for (const call of invocations(tree.rootNode)) {
    for (const flag of call.parameters.keys())
      if (PS7_PARAMETERS.includes(flag)) problems.push(`${at(call.node)} ${call.name} ${flag} (PowerShell 6+)`);
  }
  return problems;
}
