/**
 * nginx as a reference, when installed: serving the same cached file
 * statically (the practical limit for serving bytes), or resizing the same
 * photo with `image_filter resize` (libgd) on every request; and, for the
 * tests, as the proxy `deploy/nginx.conf` puts in front of iaas. It runs as a
 * foreground child with its own prefix, pid, logs and temp paths, so no
 * root-owned path is touched.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { JPEG_QUALITY, PHOTO_ID } from '../lib/plan.js';
import { freePort, launch, logTail, waitForPort, type ManagedProcess } from '../lib/proc.js';

export const NGINX_BINARY = '/usr/sbin/nginx';
export const IMAGE_FILTER_MODULE = '/usr/lib/nginx/modules/ngx_http_image_filter_module.so';

/** The nginx binary, or null when it (or, for resizing, its image filter module) is missing. */
export function findNginx(): string | null {
  return existsSync(NGINX_BINARY) ? NGINX_BINARY : null;
}

export function hasImageFilter(): boolean {
  return existsSync(IMAGE_FILTER_MODULE);
}

/** `nginx/1.22.1`, or null. */
export function nginxVersion(nginx: string): string | null {
  try {
    // nginx -v writes to stderr.
    const out = execFileSync(nginx, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.trim() || null;
  } catch (error) {
    return String((error as { stderr?: unknown }).stderr ?? '').match(/nginx\/[\w.]+/)?.[0] ?? null;
  }
}

/** nginx in front of one iaas: the upstream `iaas` that the locations proxy to. */
export interface NginxProxy {
  /** The port of the iaas behind it, on 127.0.0.1. */
  upstreamPort: number;
  /** `location` blocks, as `deploy/nginx.conf` writes them. */
  locations: string;
}

export interface NginxOptions {
  root: string;
  /**
   * `static`: files of `www`; `resize`: `/{id}_{w}_{h}.jpg` resizes the original on every request;
   * `proxy`: the locations of `proxy`, in front of an iaas.
   */
  mode: 'static' | 'resize' | 'proxy';
  proxy?: NginxProxy;
  /** Files to put in the document root, by name. */
  files: Record<string, Uint8Array>;
  /** worker_processes; the same count as the service's workers. */
  workers: number;
}

export interface RunningNginx {
  url: string;
  pid: number;
  wwwDir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** The configuration file; every path inside the instance folder. */
export function nginxConfig(dir: string, port: number, mode: NginxOptions['mode'], workers: number, proxy?: NginxProxy): string {
  const resize = `
    # The photo resized to fit w x h on every request: no cache, like a miss.
    location ~ ^/${PHOTO_ID}_(\\d+)_(\\d+)\\.jpg$ {
      set $w $1;
      set $h $2;
      rewrite ^ /original.jpg break;
      image_filter resize $w $h;
      image_filter_jpeg_quality ${JPEG_QUALITY};
      image_filter_interlace on;
      image_filter_buffer 20M;
    }`;
  if (mode === 'proxy' && !proxy) throw new Error('nginx in proxy mode needs the upstream and its locations');
  const upstream = proxy ? `\n  upstream iaas {\n    server 127.0.0.1:${proxy.upstreamPort};\n    keepalive 32;\n  }` : '';
  return `${mode === 'resize' ? `load_module ${IMAGE_FILTER_MODULE};\n` : ''}worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  types { image/jpeg jpg; }
  default_type application/octet-stream;
  # What serving static bytes fast looks like: sendfile, cached file handles,
  # and no cap on requests per keep-alive connection (iaas has none either).
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  open_file_cache max=1000 inactive=60s;${upstream}
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;${mode === 'resize' ? resize : ''}${proxy ? `\n${proxy.locations}` : ''}
  }
}
`;
}

/** Starts nginx in the foreground and waits until it accepts connections. */
export async function startNginx(nginx: string, options: NginxOptions): Promise<RunningNginx> {
  const dir = mkdtempSync(path.join(options.root, `nginx-${options.mode}-`));
  const www = path.join(dir, 'www');
  mkdirSync(www);
  // Started as root, nginx runs its workers as an unprivileged user, which must
  // be able to reach the document root through folders mkdtemp made private.
  for (const folder of [options.root, dir, www]) chmodSync(folder, 0o755);
  mkdirSync(path.join(dir, 'tmp'));
  for (const [name, bytes] of Object.entries(options.files)) writeFileSync(path.join(www, name), bytes);
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, options.mode, options.workers, options.proxy));
  const logFile = path.join(dir, 'stdout.log');
  // -e: the error log used before the configuration is read (the default is under /var/log).
  const { process: child } = await launch({
    command: nginx,
    args: ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    logFile,
  });
  try {
    await waitForPort(port, 15_000, child.alive);
  } catch (error) {
    await child.stop(1_000);
    throw new Error(`nginx did not start: ${(error as Error).message}\n${logTail(path.join(dir, 'error.log'))}\n${logTail(logFile)}`, { cause: error });
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    wwwDir: www,
    process: child,
    async stop() {
      await child.stop(5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
