/**
 * Typed, actionable errors. Every error about a file names the file, says what was expected and
 * what was found, and what to do. Pure code: used by the engine, the CLI and the UI alike.
 */

export type CheckpointErrorCode =
  | 'NOT_FOUND'
  | 'HEADER_TOO_SMALL'
  | 'HEADER_TOO_LARGE'
  | 'INVALID_HEADER_LENGTH'
  | 'INVALID_HEADER'
  | 'INVALID_DTYPE'
  | 'INVALID_SHAPE'
  | 'INVALID_OFFSET'
  | 'TENSOR_INVALID_INFO'
  | 'INCOMPLETE_BUFFER'
  | 'MISSING_TENSOR'
  | 'MISSING_SHARD'
  | 'INVALID_INDEX'
  | 'INVALID_CONFIG'
  | 'UNSAFE_PATH'
  | 'PICKLE_REFUSED'
  | 'UNSUPPORTED'
  | 'WRITE_FAILED'
  | 'OUTPUT_EXISTS'
  | 'INCOMPATIBLE';

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  constructor(
    readonly code: CheckpointErrorCode,
    /** The file or folder the problem is in. */
    readonly file: string,
    /** What is wrong, in one sentence. */
    readonly detail: string,
    /** What the user can do about it. */
    readonly hint?: string,
  ) {
    super(`${file}: ${detail}${hint ? ` — ${hint}` : ''}`);
  }
}

export function isCheckpointError(e: unknown): e is CheckpointError {
  return e instanceof CheckpointError;
}
