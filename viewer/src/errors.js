// The one error the viewer's reader raises: a file it will not read, with the spec clause it breaks.
/** A file the viewer will not read, with the spec clause it breaks (or NF-VIEW for the viewer's own limits). */
export class RefusedFile extends Error {
  constructor(code, message, location = "") {
    super(`${code}${location ? ` at ${location}` : ""}: ${message}`);
    this.name = "RefusedFile";
    this.code = code;
    this.location = location;
  }
}
