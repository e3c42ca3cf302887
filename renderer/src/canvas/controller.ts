/** What the rest of the app may ask of the canvas (set by Canvas while it is mounted). */
export interface CanvasController {
  fitView(): void;
  /** Moves overlapping nodes apart. */
  tidy(silent?: boolean): void;
  /** Flow coordinates of the visible centre (where click-to-add puts nodes). */
  center(): { x: number; y: number };
  focusNode(id: string): void;
  /** The nearest free place at or below `at` for a new node (measured sizes of the others). */
  freeSpot(at: { x: number; y: number }): { x: number; y: number };
}

let current: CanvasController | null = null;

export function setCanvasController(c: CanvasController | null): void {
  current = c;
}

export function canvas(): CanvasController | null {
  return current;
}
