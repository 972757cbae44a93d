// The one typed protocol shared by server, agent host, extension and webview.
export * from './events';
export * from './api';
export * from './agent';
export * from './webview';
export * from './redact';
export * from './backoff';
export * from './apiError';
export * from './serverLaunch';
export * from './frames';
export * from './chatPatch';
export * from './terminal';
export * from './userStream';
