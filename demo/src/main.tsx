import { createClient } from '@supabase/supabase-js';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { loadConfig } from './config.js';
import { DemoNetwork } from './network.js';
import './styles.css';

async function registerServiceWorker(): Promise<void> {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('./sw.js', { scope: './' });
  } catch (e) {
    console.warn('service worker registration failed', e);
  }
}

async function start(): Promise<void> {
  void registerServiceWorker();
  const root = createRoot(document.getElementById('root') as HTMLElement);
  try {
    const config = await loadConfig();
    const supabase = createClient(config.supabaseUrl, config.anonKey);
    const network = new DemoNetwork();
    root.render(
      <StrictMode>
        <App supabase={supabase} network={network} />
      </StrictMode>,
    );
  } catch (e) {
    root.render(<p className="fatal">{e instanceof Error ? e.message : String(e)}</p>);
  }
}

void start();
