// Markup for the officer page's components: htm over Preact, so text is always escaped and
// a re-render patches the DOM (a button being pressed stays the same element).
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);
