export * from './constants.js';
export * from './messages.js';
export * from './decoder.js';
export * from './names.js';
