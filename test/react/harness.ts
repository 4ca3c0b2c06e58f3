import { act, Component, createElement, type ReactNode, StrictMode } from 'react';
import { createRoot, type Root } from 'react-dom/client';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** A mounted React tree in a fresh container. */
export interface Mounted {
  readonly container: HTMLElement;
  render(node: ReactNode): void;
  unmount(): void;
  text(): string;
}

/** Mounts `node` (optionally in Strict Mode) inside `act`. */
export function mount(node: ReactNode, options: { strict?: boolean } = {}): Mounted {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root: Root = createRoot(container);
  const wrap = (n: ReactNode): ReactNode => (options.strict ? createElement(StrictMode, null, n) : n);
  act(() => root.render(wrap(node)));
  return {
    container,
    render(next) {
      act(() => root.render(wrap(next)));
    },
    unmount() {
      act(() => root.unmount());
      container.remove();
    },
    text: () => container.textContent ?? '',
  };
}

/** Records each render's value. */
export class RenderLog<T> {
  readonly values: T[] = [];
  get count(): number {
    return this.values.length;
  }
  get last(): T | undefined {
    return this.values.at(-1);
  }
  record(value: T): void {
    this.values.push(value);
  }
}

/** An error boundary that shows the caught error's message. */
export class Boundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };
  static getDerivedStateFromError(error: Error): { error: Error } {
    return { error };
  }
  override render(): ReactNode {
    return this.state.error !== null ? `caught: ${this.state.error.message}` : this.props.children;
  }
}
