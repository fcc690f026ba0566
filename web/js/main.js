// Entry point of the buyer pages: <body data-page="index|sale"> picks the
// page, whose module is loaded on demand (each page's HTML preloads its own
// modules with <link rel="modulepreload">). Modules run after the DOM is
// parsed.

const pages = {
  index: () => import('./index.js').then((m) => m.indexPage()),
  sale: () => import('./sale.js').then((m) => m.salePage()),
};

const start = pages[document.body.dataset.page];
if (start) start();
