/** Entry: theme first (no flash), then the engine connection, the catalogue and the document. */
import '@xyflow/react/dist/style.css';
import './styles/theme.css';
import './styles/app.css';
import './styles/canvas.css';
import './styles/history.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { loadCatalog } from './state/catalog';
import { startup } from './state/files';
import { startEventStream } from './state/runs';
import { applyTheme, uiStore } from './state/ui';

applyTheme(uiStore.get().theme);
startEventStream();
void loadCatalog();
void startup();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
