// stamps on <html> how many images decoded (read back by tests/test_report*.py in a real browser)
(function () {
  function check() {
    var im = document.images, ok = 0;
    for (var i = 0; i < im.length; i++) { if (im[i].complete && im[i].naturalWidth > 0) { ok++; } }
    var r = document.documentElement;
    r.setAttribute('data-images-total', String(im.length));
    r.setAttribute('data-images-loaded', String(ok));
    r.setAttribute('data-images-ok', ok === im.length ? 'true' : 'false');
  }
  check();
  window.addEventListener('load', check);
})();
