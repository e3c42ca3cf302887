/**
 * Removes overlaps between nodes while keeping the author's layout: nodes are visited top to bottom,
 * and one that overlaps a node already placed moves straight down below it (x never changes). Used
 * when a document is loaded or imported (positions written by hand or by other tools rarely leave
 * room for nodes showing their facts and results), and by the "Tidy" command.
 */
export interface Box {
  id: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

const GAP = 18;

export function resolveOverlaps(boxes: Box[]): Map<string, { x: number; y: number }> {
  const order = [...boxes].sort((a, b) => a.y - b.y || a.x - b.x);
  const placed: Box[] = [];
  const moved = new Map<string, { x: number; y: number }>();
  for (const b of order) {
    let y = b.y;
    for (let guard = 0; guard < 1000; guard++) {
      const hit = placed.find((p) => b.x < p.x + p.w + GAP / 2 && b.x + b.w + GAP / 2 > p.x && y < p.y + p.h + GAP && y + b.h + GAP > p.y);
      if (!hit) break;
      y = hit.y + hit.h + GAP;
    }
    placed.push({ ...b, y });
    if (y !== b.y) moved.set(b.id, { x: b.x, y: Math.round(y) });
  }
  return moved;
}

/** The first position at or below `at` where a box of the given size overlaps nothing. */
export function freeSpotAmong(boxes: Box[], at: { x: number; y: number }, size = { w: 224, h: 130 }): { x: number; y: number } {
  const p = { ...at };
  const hits = () => boxes.some((b) => p.x < b.x + b.w + GAP && p.x + size.w + GAP > b.x && p.y < b.y + b.h + GAP && p.y + size.h + GAP > b.y);
  for (let i = 0; i < 500 && hits(); i++) p.y += 20;
  return p;
}
