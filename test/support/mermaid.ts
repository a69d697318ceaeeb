import { JSDOM } from 'jsdom';

/**
 * Mermaid's own parser in node: the `mermaid` package needs a DOM for DOMPurify (its label
 * sanitizer), which jsdom provides. The parsed flowchart's vertices, edges and subgraphs come from
 * mermaid's flowchart database, so a test checks what a renderer would draw, not the text.
 */

export interface ParsedFlowchart {
  type: string;
  vertices: Map<string, { id: string; text: string; type: string; classes: string[] }>;
  edges: Array<{ start: string; end: string; text: string; stroke: string }>;
  subgraphs: Array<{ id: string; title: string; nodes: string[] }>;
}

let loaded: Promise<any> | undefined;

async function mermaidApi(): Promise<any> {
  loaded ??= (async () => {
    const dom = new JSDOM('<!doctype html><html><body></body></html>');
    Object.assign(globalThis, { window: dom.window, document: dom.window.document });
    const { default: mermaid } = await import('mermaid');
    mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
    return mermaid;
  })();
  return loaded;
}

/** Parses a flowchart with mermaid; throws mermaid's parse error for text a renderer would refuse. */
export async function parseFlowchart(text: string): Promise<ParsedFlowchart> {
  const mermaid = await mermaidApi();
  const parsed = await mermaid.parse(text);
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const db = diagram.db;
  return {
    type: parsed.diagramType,
    vertices: new Map([...db.getVertices().values()].map((v: any) => [v.id, { id: v.id, text: v.text, type: v.type, classes: v.classes }])),
    edges: db.getEdges().map((e: any) => ({ start: e.start, end: e.end, text: e.text ?? '', stroke: e.stroke })),
    subgraphs: db.getSubGraphs().map((s: any) => ({ id: s.id, title: s.title, nodes: s.nodes })),
  };
}
