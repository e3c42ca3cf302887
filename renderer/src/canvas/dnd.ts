/** Drag-and-drop payload types: a node type from the palette, a file or folder from the browser. */
export const NODE_MIME = 'application/x-upcycle-node';
export const PATH_MIME = 'application/x-upcycle-path';
