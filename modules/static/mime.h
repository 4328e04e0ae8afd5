/* static — file name extension -> Content-Type.
 *
 * From /etc/mime.types (Debian's media-types package) when it is there, with
 * a built-in table of the common web types underneath it, so a machine
 * without the file still serves pages, CSS, scripts and images right.
 * Unit-tested in tests/unit/static/test_mime.c. */
#ifndef TT_STATIC_MIME_H
#define TT_STATIC_MIME_H

#include <stddef.h>

typedef struct tt_mime tt_mime;

/* An empty table. alloc must return zeroed memory; nothing is freed one by
 * one: the memory lives as long as whatever alloc takes it from (the config,
 * or the process). NULL when out of memory. */
tt_mime *tt_mime_new(void *(*alloc)(size_t));

/* The built-in table: html, css, js, mjs, json, txt, xml, svg, png, jpg,
 * jpeg, gif, webp, avif, ico, woff, woff2, ttf, otf, pdf, wasm, mp4, webm,
 * mp3, ogg, wav, zip, gz, tar, map, csv, md... Entries already present are
 * kept. */
int tt_mime_add_builtin(tt_mime *m);

/* Read a mime.types file: "type ext ext ..." lines, '#' comments, blank
 * lines. Entries already present are kept, so add overrides first. -1 when
 * the file cannot be read (errno set), 0 otherwise. */
int tt_mime_load_file(tt_mime *m, const char *path);

/* Same for a text already in memory (tests). */
int tt_mime_load_text(tt_mime *m, const char *text, size_t len);

/* One entry: ext without the dot, case-insensitive; replaces an existing one. */
int tt_mime_set(tt_mime *m, const char *ext, const char *type);

/* The Content-Type for a file name: looked up by the text after the last dot
 * of the last path segment, case-insensitively. Text types (text/ types, and
 * application/javascript, json, xml, and image/svg+xml) come back with
 * "; charset=utf-8" appended. NULL when unknown or when the name has no
 * extension (the caller uses its default type). */
const char *tt_mime_lookup(const tt_mime *m, const char *name, size_t len);

#endif
