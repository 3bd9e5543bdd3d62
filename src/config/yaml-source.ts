import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { TenantGateError, type SourceLocation } from '../errors/index.ts';
import { interpolate, MissingEnvError } from './interpolate.ts';

/** A YAML file turned into plain data, with the line of every key kept for error messages. */
export interface SourcedValue {
  value: unknown;
  /** `a.b.0.c` → where that key (or item) is written. */
  locations: Map<string, SourceLocation>;
}

export function readYaml(text: string, file: string, env: Record<string, string | undefined>, pathPrefix = ''): SourcedValue {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    throw new TenantGateError('CONFIG_INVALID', `YAML syntax: ${first.message.split('\n')[0]}`, {
      location: { file, line: pos.line, column: pos.col },
    });
  }
  const locations = new Map<string, SourceLocation>();
  const at = (node: Node | null | undefined, key: string): SourceLocation => {
    const offset = node?.range?.[0];
    if (offset === undefined) return { file, key };
    const pos = lineCounter.linePos(offset);
    return { file, line: pos.line, column: pos.col, key };
  };
  const walk = (node: unknown, path: string): unknown => {
    if (isAlias(node)) throw new TenantGateError('CONFIG_INVALID', 'YAML anchors and aliases are not supported', { location: at(node, path) });
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key as Node;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const child = path ? `${path}.${key}` : key;
        locations.set(child, at(keyNode, child));
        out[key] = walk(pair.value, child);
      }
      return out;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => {
        const child = path ? `${path}.${i}` : String(i);
        locations.set(child, at(item as Node, child));
        return walk(item, child);
      });
    }
    if (isScalar(node)) {
      if (typeof node.value !== 'string') return node.value;
      try {
        return interpolate(node.value, env);
      } catch (err) {
        if (err instanceof MissingEnvError) {
          throw new TenantGateError('CONFIG_ENV_MISSING', err.message, {
            location: at(node, path),
            hint: `Set ${err.variable} (used by ${path || 'the file'}), or give it a default in the file: \${${err.variable}:-default}.`,
          });
        }
        throw err;
      }
    }
    return node == null ? null : undefined;
  };
  const value = walk(doc.contents, pathPrefix);
  locations.set(pathPrefix, { file, line: 1, key: pathPrefix || '(file)' });
  return { value, locations };
}
