import type { Figure } from '../lib/report.js';
export async function serverWorkload(_o: {
  quick: boolean;
  log: (l: string) => void;
  databaseUrl: string | undefined;
}): Promise<Figure[]> {
  return [];
}
