/**
 * iaas — Imaging-as-a-Service. The package's main entry: the rendering engine
 * (probe, render, prepareOriginal), the render pool, and error codes.
 */
export { prepareOriginal, probe, render } from './render/engine.js';
export type { PreparedOriginal, RenderResult } from './render/engine.js';
export { createRenderPool, resolvePoolOptions } from './render/pool.js';
export type { RenderPool, RenderPoolOptions, RenderPoolStats } from './render/pool.js';
export { DEFAULT_MAX_INPUT_PIXELS, FITS, MAX_DIMENSION, OUTPUT_FORMATS } from './render/options.js';
export type { Colour, PrepareOptions, RenderOptions } from './render/options.js';
export type { Fit, InputFormat, OutputFormat, ProbeResult, VipsStats } from './render/native.js';
export { ERROR_STATUS, ImageError, publicMessage, statusOf } from './errors.js';
export type { ErrorCode } from './errors.js';
export { encodeRaw, decodeRaw, libvipsVersion, vipsStats } from './render/tools.js';
