// Entry point of the pages: <body data-page="index|sale|verify|admin"> picks the
// page, whose module is loaded on demand (each page's HTML preloads its own
// modules with <link rel="modulepreload">). Modules run after the DOM is
// parsed.

const pages = {
  index: () => import('./index.js').then((m) => m.indexPage()),
  sale: () => import('./sale.js').then((m) => m.salePage()),
  verify: () => import('./verify.js').then((m) => m.verifyPage()),
  admin: () => import('./admin.js').then((m) => m.adminPage()),
};

const start = pages[document.body.dataset.page];
if (start) start();
