"""Review sessions: a named worklist of cases, reviewed by a list of reviewers, in an order the organiser chose.

- :mod:`.cases`: the worklist CSV an organiser gives (images, optional reference masks, labels and prompts);
- :mod:`.ordering`: the model's first answer for every case, its uncertainty, and the three orders (manifest,
  seeded random, most uncertain first);
- :mod:`.worklist`: sessions, cases and progress in the feedback database (:class:`.worklist.Worklists`);
- :mod:`.agreement`: model-vs-reviewer, reviewer-vs-reviewer and against-reference agreement, and the export;
- :mod:`.chart`: the organiser's outline-agreement chart (bars side by side on a fixed 0–1 axis, n under each);
- :mod:`.desk`: what the viewer and the API do with a worklist; :mod:`.panel`: the viewer's worklist and
  organiser panels; :mod:`.cli`: ``liverclick review``.

A case's image is kept in the database as 8-bit grayscale pixels (never the file: no DICOM header), so that
every server of the demo can serve it. A review of a case is a feedback record naming its session and case.
"""
