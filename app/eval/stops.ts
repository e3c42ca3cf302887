/**
 * Where generated text ends: the first stop string, or undefined. With `skipLeadingSpace` (chat
 * templates, whose answers are compared trimmed and whose replies often start with a newline) leading
 * whitespace is part of the reply, not a stop.
 */
export function stopAt(text: string, stops: readonly string[], skipLeadingSpace = false): number | undefined {
  const from = skipLeadingSpace ? text.length - text.trimStart().length : 0;
  let end: number | undefined;
  for (const st of stops) {
    const at = text.indexOf(st, from);
    if (at >= 0 && (end === undefined || at < end)) end = at;
  }
  return end;
}
