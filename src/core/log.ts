import { closeSync, openSync } from 'node:fs';
import pino, { type Logger, type StreamEntry } from 'pino';
import pretty from 'pino-pretty';

/**
 * Human lines on stderr (coloured on a TTY), JSON lines in each run's run.log.
 * Both hang off one multistream so a run can attach its file after startup.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const streams = pino.multistream([]);
let stderrAdded = false;

export const log: Logger = pino({ level: 'trace', base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, streams);

/** NO_COLOR (any value) turns colour off, FORCE_COLOR (not 0) on; otherwise a terminal gets colour. */
export function wantColor(env: NodeJS.ProcessEnv = process.env, tty = process.stderr.isTTY === true): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return tty;
}

export function configureConsoleLog(level: LogLevel): void {
  if (stderrAdded) return;
  stderrAdded = true;
  const stream = pretty({
    destination: 2,
    sync: true,
    colorize: wantColor(),
    translateTime: 'HH:MM:ss',
    ignore: 'pid,hostname,step,lane,node',
    hideObject: true, // structured fields go to run.log; the console shows the sentence
    messageFormat: '{if lane}[{lane}] {end}{if node}{node}: {end}{msg}',
  });
  streams.add({ stream, level } as StreamEntry);
}

/** Attach a JSON-lines file (a run's run.log); the returned function detaches and closes it. */
export function addLogFile(file: string): () => void {
  const fd = openSync(file, 'a');
  const dest = pino.destination({ dest: fd, sync: true });
  streams.add({ stream: dest, level: 'debug' } as StreamEntry);
  const id = (streams as unknown as { lastId: number }).lastId;
  let attached = true;
  const detach = () => {
    if (!attached) return;
    attached = false;
    streams.remove(id);
    closeSync(fd);
  };
  // A write that fails (a full disk) ends this file's log, not the run: say so once, on stderr.
  dest.on('error', (err: NodeJS.ErrnoException) => {
    process.stderr.write(`ultracloud: ${file}: ${err.code ?? err.message}; this run's log file stops here\n`);
    detach();
  });
  return detach;
}
