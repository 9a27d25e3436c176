// Genotypes as the engine writes them (nas_core/space/genotypes.py: per cell type, per intermediate node, the
// (op, input) pairs), or DARTS's (op, input) lists, read into one shape; and which edges differ between two.

function parseEdge(item, k) {
  if (item && !Array.isArray(item) && typeof item === "object") {
    const pair = item.edge || [];
    return { from: item.from ?? item.src ?? pair[0], to: item.to ?? item.dst ?? pair[1], op: item.op };
  }
  if (Array.isArray(item)) {
    const op = item.find((v) => typeof v === "string");
    const nums = item.filter((v) => typeof v === "number");
    // DARTS style (op, from): two inputs per intermediate node, in node order.
    if (nums.length === 1) return { from: nums[0], to: 2 + Math.floor(k / 2), op };
    return { from: nums[0], to: nums[1], op };
  }
  return null;
}

// Any of the genotype shapes the engine writes -> {cellType: {edges: [{from, to, op}], concat: [nodes]}}.
export function normalizeGenotype(g) {
  if (!g || typeof g !== "object") return {};
  if (g.genotype && typeof g.genotype === "object" && !g.cells) g = g.genotype;  // a genotype event's payload
  const src = g.cells && typeof g.cells === "object" ? g.cells : g;
  const out = {};
  for (const [ct, c] of Object.entries(src)) {
    if (ct.endsWith("_concat") || c == null || typeof c !== "object") continue;
    let edges;
    if (Array.isArray(c.nodes)) {
      // nas_core.space.genotypes: nodes[m] = the (op, input) pairs summed into node m + 2.
      edges = c.nodes.flatMap((pairs, m) => (pairs || []).map((pair) => parseEdge(pair, 0)).map((e) => e && { ...e, to: m + 2 }));
    } else {
      const list = Array.isArray(c) ? c : c.edges;
      if (!Array.isArray(list)) continue;
      edges = list.map(parseEdge);
    }
    edges = edges.filter((e) => e && typeof e.from === "number" && typeof e.to === "number");
    const maxNode = Math.max(1, ...edges.map((e) => e.to));
    let concat = Array.isArray(c) ? src[`${ct}_concat`] : c.concat;
    if (!Array.isArray(concat)) {
      const used = new Set(edges.map((e) => e.from));
      concat = [];
      for (let n = 2; n <= maxNode; n++) if (!used.has(n)) concat.push(n);
    }
    out[ct] = { edges, concat: concat.map(Number) };
  }
  return out;
}

export const edgeKey = (e) => `${e.from}-${e.to}`;

// Edges of `a` that `b` lacks or labels with another op, per cell type: {ct: Map(key -> op in b or null)}.
export function genotypeDiff(a, b) {
  const na = normalizeGenotype(a), nb = normalizeGenotype(b);
  const out = {};
  for (const [ct, cell] of Object.entries(na)) {
    const other = new Map(((nb[ct] || {}).edges || []).map((e) => [edgeKey(e), e.op]));
    const diff = new Map();
    for (const e of cell.edges) if (other.get(edgeKey(e)) !== e.op) diff.set(edgeKey(e), other.get(edgeKey(e)) ?? null);
    out[ct] = diff;
  }
  return out;
}
