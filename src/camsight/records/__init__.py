"""The typed records that cross stage boundaries: tracks, their attributes, events.

Part of the bottom layer: plain dataclasses and the facet vocabulary, no
behaviour beyond (de)serialising, so the tracker, the analytics, the store,
the search and the alerts all speak them without importing each other.

- :mod:`~camsight.records.tracks`: a finished track (observations, crops, kinematics);
- :mod:`~camsight.records.attributes`: its appearance facets;
- :mod:`~camsight.records.facets`: the vocabulary of facets camsight analyses;
- :mod:`~camsight.records.events`: events, event changes, line crossings, a rules step's output.
"""
